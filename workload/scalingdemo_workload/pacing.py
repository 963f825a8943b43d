"""When the load generator means to send each request: the rate controller.

Kept apart from sending and measuring: the sender asks only for intended send times, and latency
is measured from those times, not from when a busy client got round to sending.

A load profile is a sequence of segments, each a rate moving linearly from one value to another
over some seconds (a step holds its rate: both ends equal). The n-th request is due at the moment
the integral of the target rate reaches n, so every window of the run gets the number of requests
its target asks for, to within one, however the rate changes inside it: a step from 10/s to
50/s is 10/s up to the edge and 50/s right after, and a ramp grows smoothly instead of in
one-second stairs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


class Schedule(Protocol):
    """Intended send times (event-loop clock values) from `start` until before `end`."""

    def send_times(self, start: float, end: float) -> Iterator[float]: ...


@dataclass(frozen=True)
class Segment:
    """The target rate going linearly from `start_rate` to `end_rate` (requests per second)
    over `seconds` (infinite: held until the run ends)."""

    start_rate: float
    end_rate: float
    seconds: float

    @property
    def requests(self) -> float:
        """How many requests the segment asks for (the integral of its rate)."""
        if math.isinf(self.seconds):
            return math.inf if self.start_rate or self.end_rate else 0.0
        return (self.start_rate + self.end_rate) / 2 * self.seconds

    def rate_at(self, offset: float) -> float:
        if math.isinf(self.seconds):
            return self.start_rate
        return self.start_rate + (self.end_rate - self.start_rate) * offset / self.seconds

    def offset_of(self, count: float) -> float:
        """Seconds into the segment at which `count` of its requests are due.

        Solves start_rate*t + (end_rate - start_rate)*t²/(2*seconds) = count in the form that
        stays exact for a held rate (end == start) and for a ramp starting at zero.
        """
        if count <= 0:
            return 0.0
        held = math.isinf(self.seconds)
        slope = 0.0 if held else (self.end_rate - self.start_rate) / self.seconds
        root = math.sqrt(max(self.start_rate**2 + 2 * slope * count, 0.0))
        return 2 * count / (self.start_rate + root)


@dataclass(frozen=True)
class Profile:
    """Target rate over time as consecutive segments; after the last one the rate is zero."""

    segments: tuple[Segment, ...]

    @classmethod
    def constant(cls, rate: float) -> Profile:
        """`rate` requests per second, evenly spaced, until the run ends."""
        return cls((Segment(rate, rate, math.inf),))

    @property
    def seconds(self) -> float:
        """The profile's own length (infinite when its last rate is held to the run's end)."""
        return sum(segment.seconds for segment in self.segments)

    def target_rate(self, offset: float) -> float:
        """The target rate `offset` seconds after the start."""
        for segment in self.segments:
            if offset < segment.seconds:
                return segment.rate_at(offset)
            offset -= segment.seconds
        return 0.0

    def target_requests(self, since: float, until: float) -> float:
        """How many requests the profile asks for between two offsets from the start."""
        return self._requests_before(until) - self._requests_before(since)

    def _requests_before(self, offset: float) -> float:
        total = 0.0
        for segment in self.segments:
            if offset <= 0:
                break
            if offset >= segment.seconds:
                total += segment.requests
            else:
                rate = segment.rate_at(offset)
                total += (segment.start_rate + rate) / 2 * offset
            offset -= segment.seconds
        return total

    def send_times(self, start: float, end: float) -> Iterator[float]:
        """The n-th request (from 0) at the moment the target's integral reaches n."""
        due = 0  # the number of the next request
        counted = 0.0  # requests asked for by the segments before this one
        began = start
        for segment in self.segments:
            if began >= end:
                return
            while due < counted + segment.requests:
                at = began + segment.offset_of(due - counted)
                if at >= end:
                    return
                yield at
                due += 1
            counted += segment.requests
            began += segment.seconds
