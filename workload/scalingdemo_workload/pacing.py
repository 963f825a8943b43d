"""When the load generator means to send each request: the rate controller.

Kept apart from sending and measuring so other shapes of load (ramps, steps, bursts) can be added
as further schedules without touching either: the sender asks only for intended send times, and
latency is measured from those times, not from when a busy client got round to sending.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


class Schedule(Protocol):
    """Intended send times (time.monotonic() values) from `start` until before `end`."""

    def send_times(self, start: float, end: float) -> Iterator[float]: ...


@dataclass(frozen=True)
class ConstantRate:
    """`rate` requests per second, evenly spaced."""

    rate: float

    def send_times(self, start: float, end: float) -> Iterator[float]:
        count = 0
        while (at := start + count / self.rate) < end:
            yield at
            count += 1
