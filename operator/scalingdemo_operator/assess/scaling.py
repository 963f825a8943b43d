"""Why a component has the replicas it has: the HPA that KEDA owns and its ScaledObject ->
status.scaling and the Scaled events.

Everything a person needs to follow a scale-up sits in one place: current and desired replicas
and when the HPA last rescaled (the HPA's status), each trigger's value against its target (the
HPA's metrics, matched to the ScaledObject's triggers by KEDA's `s<index>-` metric names), whether
KEDA calls each trigger active (its status.triggersActivity), and the conditions that explain a
pause: the HPA's (ScalingLimited, AbleToScale with ScaleDownStabilized...) and KEDA's Active,
Fallback and Paused.

Pure: the watches and the writing live in `scaling_status`; this decides what to write and say.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..api import Event
from ..quantities import amount

KEDA_CONDITIONS = ("Active", "Fallback", "Paused")
CONDITION_FIELDS = ("type", "status", "reason", "message")
SUMMARY = "summary"
_INDEXED_METRIC = re.compile(r"s(\d+)-")
PER_REPLICA = "AverageValue"
UTILIZATION = "Utilization"


def _number(quantity: str | int | float | None) -> float | None:
    """A metric quantity ("38500m") as a plain number, rounded so equal readings compare equal."""
    if quantity is None:
        return None
    return round(float(amount(quantity)), 3)


FIELD_OF_TARGET = {PER_REPLICA: "averageValue", "Value": "value", UTILIZATION: "averageUtilization"}
"""The field of an HPA metric's target, and of its current reading, for each target type."""


def _reading(block: Mapping[str, Any], target_type: str | None) -> float | None:
    """The number in the field of an HPA metric block that `target_type` uses."""
    return _number(block.get(FIELD_OF_TARGET.get(target_type or "", "")))


def _metric_key(metric: Mapping[str, Any]) -> str | None:
    """The name an HPA metric (spec or status) is known by: the external metric's name, or the
    resource's (cpu, memory)."""
    if metric.get("type") == "External":
        name: str | None = metric.get("external", {}).get("metric", {}).get("name")
        return name
    if metric.get("type") == "Resource":
        resource: str | None = metric.get("resource", {}).get("name")
        return resource
    return None


def _metric_values(metrics: Iterable[Mapping[str, Any]], part: str) -> dict[str, Any]:
    """{metric name: its `part` block (target or current)} of HPA spec or status metrics."""
    found = {}
    for metric in metrics:
        key = _metric_key(metric)
        if key is not None:
            found[key] = metric.get(metric["type"].lower(), {}).get(part, {})
    return found


def _trigger_metrics(scaled_object: Mapping[str, Any]) -> dict[int, str]:
    """Trigger index -> the metric name KEDA gave it (external ones are `s<index>-...`)."""
    status = scaled_object.get("status", {})
    found = {}
    for name in status.get("externalMetricNames") or []:
        indexed = _INDEXED_METRIC.match(name)
        if indexed is not None:
            found[int(indexed[1])] = name
    for index, trigger in enumerate(scaled_object.get("spec", {}).get("triggers", [])):
        if trigger.get("type") in ("cpu", "memory"):
            found[index] = trigger["type"]
    return found


def _triggers(scaled_object: Mapping[str, Any], hpa: Mapping[str, Any]) -> list[dict[str, Any]]:
    metric_of = _trigger_metrics(scaled_object)
    targets = _metric_values(hpa.get("spec", {}).get("metrics") or [], "target")
    currents = _metric_values(hpa.get("status", {}).get("currentMetrics") or [], "current")
    activity = scaled_object.get("status", {}).get("triggersActivity") or {}
    found = []
    for index, trigger in enumerate(scaled_object.get("spec", {}).get("triggers", [])):
        metric = metric_of.get(index)
        target_block = targets.get(metric or "", {})
        target_type = target_block.get("type")
        target = _reading(target_block, target_type)
        value = _reading(currents.get(metric or "", {}), target_type)
        active = activity.get(metric or "", {}).get("isActive")
        found.append(
            {
                "name": trigger.get("name") or trigger["type"],
                "type": trigger["type"],
                "metric": metric,
                "value": value,
                "target": target,
                "targetType": target_type,
                "active": active,
            }
        )
    return found


def _conditions(items: Iterable[Mapping[str, Any]], types: Sequence[str] | None) -> list[Any]:
    return [
        {field: item.get(field, "") for field in CONDITION_FIELDS}
        for item in items
        if types is None or item.get("type") in types
    ]


def component_scaling(
    scaled_object: Mapping[str, Any], hpa: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One autoscaled component's entry of status.scaling (None: not known yet)."""
    status = (hpa or {}).get("status", {})
    return {
        "currentReplicas": status.get("currentReplicas"),
        "desiredReplicas": status.get("desiredReplicas"),
        "lastScaleTime": status.get("lastScaleTime"),
        "hpa": (hpa or {}).get("metadata", {}).get("name"),
        "triggers": _triggers(scaled_object, hpa or {}),
        "hpaConditions": _conditions(status.get("conditions") or [], None),
        "kedaConditions": _conditions(
            scaled_object.get("status", {}).get("conditions") or [], KEDA_CONDITIONS
        ),
    }


def _replicas(count: int | None) -> str:
    return "-" if count is None else str(count)


def scaling_status(components: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """status.scaling: each autoscaled component's entry and a one-line summary of their
    replicas, current/desired (`worker 1/4`), for `kubectl get -o wide`."""
    summary = " ".join(
        f"{name} {_replicas(entry['currentReplicas'])}/{_replicas(entry['desiredReplicas'])}"
        for name, entry in sorted(components.items())
    )
    return {SUMMARY: summary, **components}


def _without_nulls(value: Any) -> Any:
    """What the API server keeps of a merge-patched value: nulls remove a field."""
    if isinstance(value, Mapping):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def scaling_patch(
    previous: Mapping[str, Any] | None, current: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The merge patch that turns the written status.scaling into `current`; None when they
    already agree, so an unchanged reading writes nothing.

    Components no longer autoscaled are removed with an explicit null (a merge patch keeps keys
    it does not mention)."""
    before = dict(previous or {})
    if _without_nulls(before) == _without_nulls(dict(current)):
        return None
    gone = {name: None for name in before if name not in current}
    return {**current, **gone}


def _per(trigger: Mapping[str, Any]) -> str:
    value, target = trigger["value"], trigger["target"]
    if trigger["targetType"] == UTILIZATION:
        return f"{value:g}%/{target:g}%"
    reading = f"{value:g}/{target:g}"
    return f"{reading} per replica" if trigger["targetType"] == PER_REPLICA else reading


def _driver(triggers: Sequence[Mapping[str, Any]]) -> str:
    """The trigger asking for the most replicas (the HPA follows the largest proposal)."""
    measured = [t for t in triggers if t["value"] is not None and t["target"]]
    if not measured:
        return "no trigger value reported"
    top = max(measured, key=lambda t: t["value"] / t["target"])
    return f"{top['name']} {_per(top)}"


def rescale_events(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[Event]:
    """A Normal Scaled event per component whose HPA rescaled since the status was written.

    The HPA stamps lastScaleTime each time it rescales, so one event per new stamp is at most
    one per component per HPA sync, however often the metrics flap in between.
    """
    events = []
    for name, entry in sorted(current.items()):
        if name == SUMMARY:
            continue
        before = (previous or {}).get(name)
        stamp = entry["lastScaleTime"]
        if before is None or stamp is None or stamp == before.get("lastScaleTime"):
            continue
        desired, current_count = entry["desiredReplicas"], entry["currentReplicas"]
        was = current_count if current_count != desired else before.get("desiredReplicas")
        message = f"{name} {_replicas(was)}→{_replicas(desired)}: {_driver(entry['triggers'])}"
        events.append(Event("Normal", "Scaled", message))
    return events
