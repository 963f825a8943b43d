"""PromQL over the workload's own metrics, shared by the Prometheus trigger presets and the
dashboard panels, so a panel shows the very number a trigger acts on.

Every query is scoped to one demo's pods and aggregated to what its reader needs: one element
for KEDA (a Prometheus trigger errors on several series), per-label series for panels. Rates
use the triggers' window; histogram buckets are summed before a quantile is taken; lag is
de-duplicated per (topic, group), because each consumer reports its group's whole lag.
"""

from __future__ import annotations

from collections.abc import Sequence

from scalingdemo_workload.contract import Metric

from ..api import Owner
from ..spec import PrometheusTrigger, ScalingDemoSpec, Trigger

COMPONENTS = ("api", "worker")
RATE_WINDOW = "1m"
UP = "up"
"""Prometheus' own per-target series: one per scraped pod, whatever the workload exports."""
KEDA_SCALER_VALUE = "keda_scaler_metrics_value"
"""KEDA's own reading of each trigger (empty where KEDA's metrics are not scraped)."""


def scope(
    owner: Owner,
    components: Sequence[str] = COMPONENTS,
    *,
    label: str = "service",
    prefix: str = "",
) -> str:
    """PromQL label matchers for this demo's pods (the labels Kubernetes discovery adds).

    Other exporters name the demo's objects in other labels: kube-state-metrics puts a
    Deployment's name in `deployment` and an HPA's (KEDA's `keda-hpa-<name>`) in
    `horizontalpodautoscaler`, hence `label` and `prefix`.
    """
    names = "|".join(f"{prefix}{owner.child_name(name)}" for name in components)
    return f'namespace="{owner.namespace}", {label}=~"{names}"'


def rate(metric: str, labels: str) -> str:
    """Per-second rate over the window the triggers use, so panels show what KEDA sees."""
    return f"rate({metric}{{{labels}}}[{RATE_WINDOW}])"


def quantile(value: float, histogram: str, labels: str, by: Sequence[str] = ()) -> str:
    """A quantile of a histogram over every pod: buckets are summed before interpolating."""
    grouping = ", ".join(("le", *by))
    return (
        f"histogram_quantile({value}, sum by ({grouping}) ({rate(f'{histogram}_bucket', labels)}))"
    )


def lag(labels: str, by: Sequence[str] = ()) -> str:
    """Consumer lag, de-duplicated with max per (topic, group) before summing.

    Every consumer reports its group's whole lag, so summing the raw series would multiply the
    backlog by the replica count.
    """
    head = f"sum by ({', '.join(by)}) " if by else "sum"
    return f"{head}(max by (topic, group) ({Metric.CONSUMER_LAG}{{{labels}}}))"


def topic_lag(spec: ScalingDemoSpec, owner: Owner, topic: str) -> str:
    """The lag of one topic's consumer group (spec topic role `messages` or `tasks`)."""
    names = spec.kafka_names(owner)
    return lag(f'{scope(owner)}, topic="{names.topics[topic]}", group="{names.groups[topic]}"')


def preset_query(spec: ScalingDemoSpec, owner: Owner, preset: str) -> str:
    """A named query over the workload's own metrics, aggregated to the one element KEDA needs."""
    labels = scope(owner)
    if preset == "queueDepth":
        return topic_lag(spec, owner, "tasks")
    if preset == "tasksInProgress":
        return f"sum({Metric.TASKS_IN_PROGRESS}{{{labels}}})"
    if preset == "requestRate":
        return f"sum({rate(Metric.HTTP_REQUESTS, labels)})"
    return quantile(0.95, Metric.HTTP_REQUEST_DURATION, labels)


def trigger_query(spec: ScalingDemoSpec, owner: Owner, prometheus: PrometheusTrigger) -> str:
    """The query a prometheus trigger runs: the user's own, or the preset's."""
    return prometheus.query or preset_query(spec, owner, str(prometheus.preset))


def constant(value: float | int | str) -> str:
    """A flat line at `value` (a threshold or a replica ceiling from the spec)."""
    return f"vector({value})"


def replicas(owner: Owner, name: str) -> str:
    """Pods of the component that Prometheus scrapes: the divisor of a per-replica value."""
    return f"count({UP}{{{scope(owner, (name,))}}})"


def keda_value(owner: Owner, name: str, trigger: Trigger) -> str:
    """KEDA's own reading of the trigger per replica, whichever label KEDA's namespace ended up
    in (scraped without honorLabels, KEDA's `namespace` label becomes `exported_namespace`)."""
    selectors = [
        f'{label}="{owner.namespace}", scaledObject="{owner.child_name(name)}", '
        f'scaler="{trigger.name}"'
        for label in ("namespace", "exported_namespace")
    ]
    found = " or ".join(f"{KEDA_SCALER_VALUE}{{{selector}}}" for selector in selectors)
    return f"max({found}) / {replicas(owner, name)}"
