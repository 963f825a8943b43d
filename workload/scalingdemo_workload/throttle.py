"""Logging that stays readable, and cheap, while Kafka is down.

An outage makes the same failure happen hundreds of times a second (every request, every
reconnect). One line per distinct message per interval, followed by a count of what was held
back, says everything those lines would have said without megabytes of log or the CPU to
format them.
"""

import logging
import time
from collections.abc import Callable

SUMMARY_INTERVAL_SECONDS = 10.0


class _Window:
    """How often one message was held back since it was last let through."""

    __slots__ = ("held", "reopens_at")

    def __init__(self) -> None:
        self.held = 0
        self.reopens_at = 0.0


class Throttle:
    """Decides, per key, whether a line goes out now; counts those held back."""

    def __init__(
        self,
        interval: float = SUMMARY_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._windows: dict[object, _Window] = {}

    def admit(self, key: object) -> int | None:
        """None to hold the line back; otherwise how many were held back before it."""
        window = self._windows.setdefault(key, _Window())
        now = self._clock()
        if now < window.reopens_at:
            window.held += 1
            return None
        held, window.held = window.held, 0
        window.reopens_at = now + self._interval
        return held


class ThrottledLog:
    """A logger's warning() with at most one line per message per interval."""

    def __init__(self, logger: logging.Logger, throttle: Throttle | None = None) -> None:
        self._logger = logger
        self._throttle = throttle or Throttle()

    def warning(self, message: str, *args: object) -> None:
        held = self._throttle.admit(message)
        if held is None:
            return
        if held:
            message += " (and %d more like it since the last such line)"
            args = (*args, held)
        self._logger.warning(message, *args)


class LibraryLogFilter(logging.Filter):
    """Throttles warnings and errors of chatty libraries (aiokafka logs every failed reconnect
    at ERROR) at the handler, where it sees every logger's records."""

    def __init__(self, prefixes: tuple[str, ...], throttle: Throttle | None = None) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._throttle = throttle or Throttle()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self._prefixes):
            return True
        held = self._throttle.admit((record.name, record.msg))
        if held is None:
            return False
        if held:
            record.msg = f"{record.msg} (and {held} more like it since the last such line)"
        return True
