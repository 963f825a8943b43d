"""A scenario's timeline: one sample a second of load, backlog and scaling, and what it adds up to.

Samples are kept as plain values so the timeline can be written as CSV (one row per second, one
column per series, for a spreadsheet) and JSON (the same samples plus the scale events and the
summary, for scripts), and so the chart and the summary read the very same numbers.

Scale events come from the HPA's own record: each new lastScaleTime in status.scaling, with the
replica counts before and after. The summary's times are measured against them, not against
the moment a sample happened to notice the change.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Trigger:
    """One trigger's reading from status.scaling."""

    name: str
    value: float | None
    target: float | None
    active: bool | None


@dataclass(frozen=True)
class Component:
    """One autoscaled component's replicas and triggers from status.scaling."""

    current: int | None
    desired: int | None
    last_scale_time: str | None
    triggers: tuple[Trigger, ...] = ()


@dataclass(frozen=True)
class Sample:
    """The scenario at `seconds` after the load started."""

    seconds: float
    target_rate: float | None
    achieved_rate: float
    backlog: int | None
    components: Mapping[str, Component] = field(default_factory=dict)


@dataclass(frozen=True)
class ScaleEvent:
    """The HPA rescaled `component` from `before` to `after`, `seconds` after the start."""

    seconds: float
    component: str
    before: int | None
    after: int | None


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Timeline:
    """Samples of one run; `started` is the wall-clock time (epoch seconds) the load began."""

    started: float
    samples: list[Sample] = field(default_factory=list)

    @classmethod
    def read(cls, document: Path) -> Timeline:
        """The timeline saved as timeline.json by write(): a report can be drawn again, or its
        chart checked against the numbers it was drawn from."""
        saved = json.loads(document.read_text())
        samples = [
            Sample(
                sample["seconds"],
                sample["target_rate"],
                sample["achieved_rate"],
                sample["backlog"],
                {
                    name: Component(
                        found["current"],
                        found["desired"],
                        found["last_scale_time"],
                        tuple(Trigger(**trigger) for trigger in found["triggers"]),
                    )
                    for name, found in sample["components"].items()
                },
            )
            for sample in saved["samples"]
        ]
        return cls(saved["started"], samples)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def components(self) -> list[str]:
        return sorted({name for sample in self.samples for name in sample.components})

    def scale_events(self) -> list[ScaleEvent]:
        """Each new HPA lastScaleTime seen during the run, with the replicas it went between.

        The first sample's lastScaleTime is a rescale from before the run: not an event."""
        events = []
        for name in self.components():
            seen = [s.components[name] for s in self.samples if name in s.components]
            for before, after in pairwise(seen):
                stamp = after.last_scale_time
                if stamp is not None and stamp != before.last_scale_time:
                    seconds = _timestamp(stamp) - self.started
                    events.append(ScaleEvent(seconds, name, before.desired, after.desired))
        return sorted(events, key=lambda event: event.seconds)

    def summary(self, lost_requests: int) -> dict[str, float | int | None]:
        """The figures a scenario is judged by (None: did not happen in the run)."""
        events = self.scale_events()
        ups = [event for event in events if (event.after or 0) > (event.before or 0)]
        replicas = [self._current_total(sample) for sample in self.samples]
        peak = max(replicas, default=0)
        backlogs = [(s.seconds, s.backlog) for s in self.samples if s.backlog is not None]
        peak_backlog = max((b for _, b in backlogs), default=None)
        return {
            "time_to_first_scale_up_s": ups[0].seconds if ups else None,
            "time_to_max_replicas_s": next(
                (
                    s.seconds
                    for s, count in zip(self.samples, replicas, strict=True)
                    if count == peak
                ),
                None,
            ),
            "max_replicas": peak,
            "peak_backlog": peak_backlog,
            "drain_time_s": _drain_time(backlogs, peak_backlog),
            "replica_seconds": round(self._replica_seconds(replicas), 1),
            "lost_requests": lost_requests,
        }

    @staticmethod
    def _current_total(sample: Sample) -> int:
        return sum(item.current or 0 for item in sample.components.values())

    def _replica_seconds(self, replicas: Sequence[int]) -> float:
        """Replicas integrated over time, each sample's count held until the next sample."""
        spans = [after.seconds - before.seconds for before, after in pairwise(self.samples)]
        return sum(count * span for count, span in zip(replicas, spans, strict=False))

    def rows(self) -> Iterator[dict[str, Any]]:
        """One flat row per sample: the CSV's lines."""
        for sample in self.samples:
            row: dict[str, Any] = {
                "seconds": round(sample.seconds, 3),
                "target_rate": sample.target_rate,
                "achieved_rate": round(sample.achieved_rate, 3),
                "backlog": sample.backlog,
            }
            for name in self.components():
                found = sample.components.get(name) or Component(None, None, None)
                row[f"{name}_current"] = found.current
                row[f"{name}_desired"] = found.desired
                for trigger in found.triggers:
                    row[f"{name}_{trigger.name}_value"] = trigger.value
                    row[f"{name}_{trigger.name}_target"] = trigger.target
            yield row

    def write(self, directory: Path, lost_requests: int) -> tuple[Path, Path]:
        """timeline.csv and timeline.json in `directory` (created if missing)."""
        directory.mkdir(parents=True, exist_ok=True)
        rows = list(self.rows())
        columns = list(dict.fromkeys(key for row in rows for key in row))
        table = directory / "timeline.csv"
        with table.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        document = directory / "timeline.json"
        document.write_text(
            json.dumps(
                {
                    "started": self.started,
                    "samples": [asdict(sample) for sample in self.samples],
                    "scale_events": [asdict(event) for event in self.scale_events()],
                    "summary": self.summary(lost_requests),
                },
                indent=1,
            )
        )
        return table, document


def _drain_time(backlogs: Sequence[tuple[float, int]], peak: int | None) -> float | None:
    """Seconds from the peak backlog until the backlog is next empty."""
    if not peak:
        return None
    at_peak = next(seconds for seconds, backlog in backlogs if backlog == peak)
    emptied = next(
        (seconds for seconds, backlog in backlogs if seconds > at_peak and backlog == 0), None
    )
    return None if emptied is None else round(emptied - at_peak, 3)
