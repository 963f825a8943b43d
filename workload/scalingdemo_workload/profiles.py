"""The compact load-profile syntax of `scalingdemo-load --profile`.

    constant:20/s                      20 requests a second for --duration
    step:10/s@30s,50/s@60s,0/s@60s     each rate held for its time, one after the other
    ramp:0/s..100/s@2m,100/s@30s       linear from one rate to the next; holds may be mixed in
    spike:10/s,200/s@30s+10s           10/s, 200/s from 30 s for 10 s, then 10/s again, for
                                       --duration

Rates are per second (`/s`) or per minute (`/m`); times in ms, s, m or h. A step or ramp
profile sets its own length; constant and spike run for --duration. A mistake is reported with
the segment it is in, so a long profile does not have to be read twice to find it.
"""

from __future__ import annotations

import math
import re

from .pacing import Profile, Segment

MAX_RATE = 100_000.0
MAX_SECONDS = 86_400.0
KINDS = ("constant", "step", "ramp", "spike")
RATE_UNITS = {"s": 1.0, "m": 1 / 60}
TIME_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_RATE = re.compile(rf"{_NUMBER}/(s|m)")
_TIME = re.compile(rf"{_NUMBER}(ms|s|m|h)")


class ProfileError(ValueError):
    """A profile that cannot be run; the message names the segment at fault."""


def rate(text: str, where: str) -> float:
    """Requests per second from `20/s` or `600/m`."""
    found = _RATE.fullmatch(text.strip())
    if found is None:
        raise ProfileError(f"{where}: rate {text!r} must look like 20/s or 600/m")
    value = float(found[1]) * RATE_UNITS[found[2]]
    if value > MAX_RATE:
        raise ProfileError(f"{where}: rate {text!r} is above {MAX_RATE:g}/s")
    return value


def seconds(text: str, where: str, zero: bool = False) -> float:
    """Seconds from `500ms`, `30s`, `2m` or `1h`; more than zero unless `zero` allows it."""
    found = _TIME.fullmatch(text.strip())
    if found is None:
        raise ProfileError(f"{where}: time {text!r} must look like 30s, 2m, 1h or 500ms")
    value = float(found[1]) * TIME_UNITS[found[2]]
    if value > MAX_SECONDS or value < 0 or (value == 0 and not zero):
        lowest = "0 or more" if zero else "above 0"
        raise ProfileError(f"{where}: time {text!r} must be {lowest} and at most {MAX_SECONDS:g}s")
    return value


def _timed(text: str, where: str) -> tuple[str, float]:
    """`RATES@TIME` -> (RATES, seconds)."""
    rates, at, time = text.partition("@")
    if not at:
        raise ProfileError(f"{where}: expected RATE@TIME, e.g. 10/s@30s")
    return rates, seconds(time, where)


def _segment(text: str, where: str, kind: str) -> Segment:
    """`RATE@TIME`, or for a ramp also `FROM..TO@TIME`."""
    rates, length = _timed(text, where)
    first, dots, last = rates.partition("..")
    if dots and kind != "ramp":
        raise ProfileError(f"{where}: a {kind} holds one rate; FROM..TO belongs in a ramp profile")
    return Segment(rate(first, where), rate(last if dots else first, where), length)


def _spike(body: str, duration: float) -> tuple[Segment, ...]:
    base_text, comma, peak_text = body.partition(",")
    where = f"spike {body!r}"
    if not comma:
        raise ProfileError(f"{where}: expected BASE,PEAK@START+LENGTH, e.g. 10/s,200/s@30s+10s")
    base = rate(base_text, where)
    peak_rate, window = _timed_window(peak_text, where)
    start, length = window
    if start + length > duration:
        raise ProfileError(
            f"{where}: the spike ends at {start + length:g}s, after --duration {duration:g}s"
        )
    parts = [
        Segment(base, base, start),
        Segment(peak_rate, peak_rate, length),
        Segment(base, base, duration - start - length),
    ]
    return tuple(part for part in parts if part.seconds > 0)


def _timed_window(text: str, where: str) -> tuple[float, tuple[float, float]]:
    """`PEAK@START+LENGTH` -> (peak rate, (start, length)); the start may be 0s."""
    rates, at, window = text.partition("@")
    begin, plus, length = window.partition("+")
    if not at or not plus:
        raise ProfileError(f"{where}: expected PEAK@START+LENGTH, e.g. 200/s@30s+10s")
    start = seconds(begin, where, zero=True)
    return rate(rates, where), (start, seconds(length, where))


def parse_profile(text: str, duration: float | None) -> Profile:
    """A Profile from the compact syntax; `duration` is --duration (None: not given)."""
    kind, colon, body = text.partition(":")
    if not colon or kind not in KINDS:
        raise ProfileError(f"expected one of {', '.join(k + ':...' for k in KINDS)}, got {text!r}")
    if kind in ("constant", "spike"):
        if duration is None:
            raise ProfileError(f"a {kind} profile runs for --duration, which is not given")
        if kind == "spike":
            return Profile(_spike(body, duration))
        held = rate(body, f"constant {body!r}")
        return Profile((Segment(held, held, duration),))
    if duration is not None:
        raise ProfileError(f"a {kind} profile sets its own length; leave --duration out")
    segments = tuple(
        _segment(part, f"segment {number} {part!r}", kind)
        for number, part in enumerate(body.split(","), start=1)
    )
    total = sum(segment.seconds for segment in segments)
    if total > MAX_SECONDS or math.isinf(total):
        raise ProfileError(f"the profile lasts {total:g}s, more than {MAX_SECONDS:g}s")
    return Profile(segments)
