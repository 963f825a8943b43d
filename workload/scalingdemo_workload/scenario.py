"""`scalingdemo-load --watch sdemo/NAME`: the run as a scenario, watched and reported.

While the load runs, one sample a second joins what the load generator did (target and achieved
rate) with what the demo did about it (backlog, replicas, trigger values; see demo_watch), shown
live in the terminal. At the end the timeline is saved as CSV and JSON, drawn as a PNG, and
summed up in a table: how long the first scale-up took, how long until the most replicas, the
peak backlog and how long it took to drain, the replica-seconds spent, and the requests lost.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Generic, TypeVar

from rich.console import Group, RenderableType
from rich.table import Table

from .demo_watch import DemoWatch
from .pacing import Profile
from .report_chart import ChartUnavailable, chart_title, draw
from .timeline import Component, Sample, Timeline

SAMPLE_SECONDS = 1.0
STALE_SECONDS = 10.0
"""A reading older than this is shown as unknown, not as the current value."""
T = TypeVar("T")
SUMMARY_LABELS = {
    "time_to_first_scale_up_s": ("time to first scale-up", "s"),
    "time_to_max_replicas_s": ("time to max replicas", "s"),
    "max_replicas": ("max replicas", ""),
    "peak_backlog": ("peak backlog", " messages"),
    "drain_time_s": ("drain time (peak backlog to empty)", "s"),
    "replica_seconds": ("replica-seconds", ""),
    "lost_requests": ("lost requests (errors and not sent)", ""),
}


class Latest(Generic[T]):
    """The last value a reader returned, and when: too old counts as not known."""

    def __init__(self) -> None:
        self._value: T | None = None
        self._at = -math.inf

    def get(self, now: float) -> T | None:
        return self._value if now - self._at <= STALE_SECONDS else None

    async def follow(self, read: Callable[[], Awaitable[T]]) -> None:
        """Read again a sample interval after each answer, until cancelled."""
        while True:
            self._value = await read()
            self._at = time.monotonic()
            await asyncio.sleep(SAMPLE_SECONDS)


def _number(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value}{unit}" if isinstance(value, int) else f"{value:.1f}{unit}"


class Scenario:
    """Samples one demo each second while the load runs; writes the report at the end."""

    def __init__(self, watch: DemoWatch, profile: Profile | None, report: Path) -> None:
        self._watch = watch
        self._profile = profile
        self.report = report
        self.timeline = Timeline(time.time())
        self._begun = time.monotonic()

    async def sample(self, sent: Callable[[], int]) -> None:
        """Add a sample every second until cancelled, the first one at once.

        The reads run on their own: a sample takes the latest value each has, so an API server
        or a broker that is slow to answer (or does not) leaves a gap in its series rather than
        stopping the clock of the whole view."""
        self.timeline = Timeline(time.time())
        self._begun = time.monotonic()
        scaling: Latest[dict[str, Component]] = Latest()
        backlog: Latest[int | None] = Latest()
        readers = [
            asyncio.create_task(scaling.follow(self._watch.scaling)),
            asyncio.create_task(backlog.follow(self._watch.backlog)),
        ]
        before, then = sent(), self._begun
        try:
            while True:
                now, count = time.monotonic(), sent()
                seconds = now - self._begun
                achieved = (count - before) / (now - then) if now > then else 0.0
                target = None if self._profile is None else self._profile.target_rate(seconds)
                self.timeline.add(
                    Sample(seconds, target, achieved, backlog.get(now), scaling.get(now) or {})
                )
                before, then = count, now
                await asyncio.sleep(max(SAMPLE_SECONDS - (time.monotonic() - now), 0))
        finally:
            for reader in readers:
                reader.cancel()
            # Bounded: a client library that holds on to a cancelled read must not hold the end.
            await asyncio.wait(readers, timeout=SAMPLE_SECONDS)

    def __rich__(self) -> RenderableType:
        """The live view: the latest sample."""
        title = f"sdemo/{self._watch.name} in {self._watch.namespace}"
        table = Table(title=title, show_header=True)
        for column in ("what", "now"):
            table.add_column(column)
        if not self.timeline.samples:
            table.add_row("waiting for the first sample", "")
            return table
        latest = self.timeline.samples[-1]
        table.add_row("elapsed", f"{latest.seconds:.0f} s")
        table.add_row("rate target / achieved", f"{_number(latest.target_rate)} / "
                      f"{latest.achieved_rate:.1f} req/s")  # fmt: skip
        table.add_row("backlog (Kafka lag)", _number(latest.backlog))
        for name, component in sorted(latest.components.items()):
            table.add_row(
                f"{name} replicas current / desired",
                f"{_number(component.current)} / {_number(component.desired)}",
            )
            for trigger in component.triggers:
                state = {True: " active", False: " idle", None: ""}[trigger.active]
                table.add_row(
                    f"  {trigger.name}",
                    f"{_number(trigger.value)} / {_number(trigger.target)}{state}",
                )
        return table

    def finish(self, lost_requests: int) -> RenderableType:
        """Write timeline.csv, timeline.json and chart.png; the summary table and where they
        went."""
        table_path, json_path = self.timeline.write(self.report, lost_requests)
        written = [str(table_path), str(json_path)]
        try:
            chart = draw(self.timeline, self.report / "chart.png", chart_title(self._watch.name))
            written.append(str(chart))
        except ChartUnavailable as err:
            written.append(f"no chart: {err}")
        summary = Table(title="Scaling summary", show_header=True)
        summary.add_column("figure")
        summary.add_column("value", justify="right")
        for key, value in self.timeline.summary(lost_requests).items():
            label, unit = SUMMARY_LABELS[key]
            summary.add_row(label, _number(value, unit))
        return Group(summary, *(f"written: {item}" for item in written))
