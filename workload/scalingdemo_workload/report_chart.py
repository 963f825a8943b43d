"""The scenario chart: what the load did, what piled up, and how the HPA answered, on one time axis.

Three panels share the x axis (seconds since the load started): target and achieved request
rate; the backlog (Kafka's own lag); and, per autoscaled component, the replicas the HPA wanted
against those it had, with each trigger's value and its threshold drawn as a dashed line. Every
HPA rescale is a vertical line through all panels, so a reader sees which rise in backlog was
answered when. Every series is read from the timeline, the same numbers the CSV holds.

matplotlib is an optional extra (`pip install scalingdemo[report]`): the service image does not
need it, so it is imported only when a chart is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .timeline import Timeline

SIZE_INCHES = (11, 9)
DPI = 110


class ChartUnavailable(RuntimeError):
    """matplotlib is not installed; the message says how to get it."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ChartUnavailable(
            "the PNG chart needs matplotlib: pip install 'scalingdemo[report]'"
        ) from None
    return plt


def _series(timeline: Timeline, read: Any) -> tuple[list[float], list[Any]]:
    return [s.seconds for s in timeline.samples], [read(s) for s in timeline.samples]


def chart_title(demo: str) -> str:
    """The chart's title for the ScalingDemo named `demo`."""
    return f"sdemo/{demo}: load, backlog and replicas"


def draw(timeline: Timeline, path: Path, title: str) -> Path:
    """Write the chart as a PNG at `path`."""
    plt = _pyplot()
    drawn = chart(timeline, title)
    drawn.savefig(path, dpi=DPI)
    plt.close(drawn)
    return path


def chart(timeline: Timeline, title: str) -> Any:
    """The chart as a matplotlib Figure: rates, backlog (with trigger values), replicas."""
    plt = _pyplot()
    figure, (rates, backlog, replicas) = plt.subplots(3, 1, sharex=True, figsize=SIZE_INCHES)
    seconds, target = _series(timeline, lambda s: s.target_rate)
    rates.plot(seconds, target, label="target rate", drawstyle="steps-post")
    rates.plot(seconds, _series(timeline, lambda s: s.achieved_rate)[1], label="achieved rate")
    rates.set_ylabel("requests/s")
    backlog.plot(seconds, _series(timeline, lambda s: s.backlog)[1], label="backlog", color="C3")
    backlog.set_ylabel("messages")
    for index, name in enumerate(timeline.components()):
        color = f"C{index + 4}"
        current = _series(timeline, lambda s, n=name: _component(s, n, "current"))[1]
        desired = _series(timeline, lambda s, n=name: _component(s, n, "desired"))[1]
        replicas.plot(
            seconds, desired, "--", color=color, label=f"{name} desired", drawstyle="steps-post"
        )
        replicas.plot(
            seconds, current, color=color, label=f"{name} current", drawstyle="steps-post"
        )
        _triggers(timeline, name, backlog)
    replicas.set_ylabel("replicas")
    replicas.set_xlabel("seconds since the load started")
    for event in timeline.scale_events():
        for axis in (rates, backlog, replicas):
            axis.axvline(event.seconds, color="grey", linewidth=0.8, alpha=0.6)
        replicas.annotate(
            f"{event.component} {event.before}→{event.after}",
            (event.seconds, event.after or 0),
            textcoords="offset points",
            xytext=(3, 3),
            fontsize=8,
        )
    for axis in (rates, backlog, replicas):
        axis.legend(loc="upper right", fontsize=8)
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def _component(sample: Any, name: str, field: str) -> int | None:
    found = sample.components.get(name)
    return None if found is None else getattr(found, field)


def _triggers(timeline: Timeline, name: str, axis: Any) -> None:
    """Each trigger's value on a second scale of the backlog panel, its threshold dashed."""
    names = sorted(
        {
            t.name
            for s in timeline.samples
            if name in s.components
            for t in s.components[name].triggers
        }
    )
    if not names:
        return
    values = axis.twinx()
    values.set_ylabel("trigger value per replica")
    for index, trigger in enumerate(names):
        color = f"C{index}"
        readings = [
            next((t for t in s.components[name].triggers if t.name == trigger), None)
            if name in s.components
            else None
            for s in timeline.samples
        ]
        seconds = [s.seconds for s in timeline.samples]
        values.plot(
            seconds,
            [None if r is None else r.value for r in readings],
            color=color,
            alpha=0.7,
            label=f"{name} {trigger}",
        )
        thresholds = {r.target for r in readings if r is not None and r.target is not None}
        for threshold in sorted(thresholds):
            values.axhline(threshold, color=color, linestyle=":", label=f"{trigger} target")
    values.legend(loc="upper left", fontsize=8)
