"""The rate controller driving the sender: `scalingdemo-load`'s open loop on a simulated clock.

The load generator paces on the event loop's clock, so it runs here on a loop whose time is
simulated (looptime): a sleep of a second takes no real time and the clock moves only when
nothing else can run. What the sender did is then counted per step of the profile and compared
with the profile's integral, exactly and the same way on an idle or a busy machine. How close a
real run comes on real time is measured by benchmarks/load_pacing.py, not asserted here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import looptime
import pytest
from rich.progress import Progress
from scalingdemo_workload.loadgen import LoadRun, parse_args
from scalingdemo_workload.loadstats import LoadStats
from scalingdemo_workload.pacing import Profile

pytestmark = pytest.mark.unit

T = TypeVar("T")
URL = "http://127.0.0.1:9"
"""Never contacted: the session below answers instead."""


class Answer:
    """A 202 as the workload gives it."""

    status = 202

    async def read(self) -> bytes:
        return b"{}"


class AnsweringSession:
    """Stands in for the HTTP session: notes the clock at each request and answers 202 after
    `latency` seconds of the same clock."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.sent: list[float] = []

    @contextlib.asynccontextmanager
    async def post(self, url: str, json: Any) -> AsyncIterator[Answer]:
        self.sent.append(asyncio.get_running_loop().time())
        await asyncio.sleep(self.latency)
        yield Answer()


def simulated(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on an event loop whose clock starts at 0 and is simulated."""
    loop = looptime.new_event_loop(start=0)
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def send(argv: list[str], session: AnsweringSession) -> tuple[argparse.Namespace, LoadStats]:
    args = parse_args([URL, *argv])

    async def run() -> LoadStats:
        load = LoadRun(args, session)  # type: ignore[arg-type]
        load.stats.elapsed = await load.run(Progress(disable=True))
        return load.stats

    return args, simulated(run())


def per_step(profile: Profile, sent: list[float]) -> list[tuple[int, float]]:
    """(requests sent, requests the profile asks for) in each of its segments."""
    counts, began = [], 0.0
    for segment in profile.segments:
        until = began + segment.seconds
        counts.append(
            (
                sum(1 for at in sent if began <= at < until),
                profile.target_requests(began, until),
            )
        )
        began = until
    return counts


@pytest.mark.parametrize(
    "profile",
    [
        "step:40/s@2s,160/s@2s,0/s@1s,80/s@2s",
        "step:10/s@30s,50/s@60s,0/s@60s",
        "ramp:0/s..100/s@4s,100/s..3/s@3s,3/s@1s",
    ],
)
def test_each_step_gets_the_requests_its_rate_asks_for(profile):
    session = AnsweringSession()
    args, stats = send(["--profile", profile], session)
    counts = per_step(args.profile, session.sent)
    for sent, target in counts:
        assert sent == pytest.approx(target, abs=1), counts
    assert stats.sent == stats.accepted == len(session.sent)
    assert len(session.sent) == pytest.approx(args.profile.target_requests(0, args.duration), abs=1)
    assert (stats.errors, stats.not_sent, stats.elapsed) == (0, 0, args.duration)


def test_requests_go_out_when_they_are_due_and_latency_counts_from_then():
    session = AnsweringSession(latency=0.5)
    _, stats = send(["--rate", "4", "--duration", "2"], session)
    assert session.sent == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    # The last one would have been answered after the end: in flight, not counted as sent.
    assert (stats.accepted, stats.unfinished) == (7, 1)
    for percentile in (0, 100):
        assert stats.latency_seconds(percentile) == pytest.approx(0.5, rel=1e-3)


def test_a_saturated_target_leaves_due_requests_unsent_instead_of_sending_late():
    session = AnsweringSession(latency=10.0)
    _, stats = send(["--rate", "10", "--duration", "1", "--max-in-flight", "2"], session)
    # Two slots, held for 10 s each: the other eight due in the second stay queued.
    assert session.sent == [0.0, 0.1]
    assert (stats.accepted, stats.unfinished, stats.not_sent) == (0, 2, 8)
