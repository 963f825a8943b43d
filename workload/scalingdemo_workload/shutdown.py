"""The moment shutdown began, shared by everything that must finish before the grace period ends.

aiohttp stops in steps (signal handlers, open requests, then cleanup contexts), so each part
measures its remaining time from one deadline set when SIGTERM arrived, instead of each taking
the full grace period in turn.
"""

import time


class Shutdown:
    """Whether the process is stopping, and by when it must be done."""

    def __init__(self, grace_seconds: float) -> None:
        self._grace = grace_seconds
        self.deadline: float | None = None

    @property
    def started(self) -> bool:
        return self.deadline is not None

    def begin(self) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + self._grace

    def remaining_deadline(self) -> float:
        """The deadline, starting the clock now if nothing started it yet."""
        self.begin()
        assert self.deadline is not None
        return self.deadline
