"""PromQL shared by the Prometheus trigger presets, the dashboard panels and the alert rules, so
a panel shows the very number a trigger acts on and an alert fires on what a panel draws.

Every query is scoped to one demo's pods and aggregated to what its reader needs: one element
for KEDA (a Prometheus trigger errors on several series), per-label series for panels. Rates
use the triggers' window; histogram buckets are summed before a quantile is taken; lag is
de-duplicated per (topic, group), because each consumer reports its group's whole lag.

Beside the workload's own series: KEDA's (names as KEDA 2.21 registers them in
pkg/metricscollector/prommetrics.go), and kube-state-metrics' (HPAs built in; VPA
recommendations and ScalingDemo conditions through the customResourceState config the
quickstart ships, examples/kind/values/kube-prometheus-stack.yaml).
"""

from __future__ import annotations

from collections.abc import Sequence

from scalingdemo_workload.contract import Metric

from ..api import Owner
from ..spec import PrometheusTrigger, ScalingDemoSpec, Trigger
from .workload import CONTAINER

COMPONENTS = ("api", "worker")
RATE_WINDOW = "1m"
UP = "up"
"""Prometheus' own per-target series: one per scraped pod, whatever the workload exports."""
KEDA_SCALER_VALUE = "keda_scaler_metrics_value"
"""KEDA's own reading of each trigger (empty where KEDA's metrics are not scraped)."""
KEDA_SCALER_ACTIVE = "keda_scaler_active"
KEDA_SCALER_ERRORS = "keda_scaler_detail_errors_total"
KEDA_SCALED_OBJECT_ERRORS = "keda_scaled_object_errors_total"
KEDA_COMPOSITE_SCALER = "composite-metric"
"""The `scaler` label KEDA gives the scalingModifiers formula's value."""
KEDA_HPA_PREFIX = "keda-hpa-"
"""KEDA names the HPA of a ScaledObject keda-hpa-<name>."""
KEDA_NAMESPACE_LABELS = ("namespace", "exported_namespace")
"""Scraped without honorLabels (the keda chart's ServiceMonitors), KEDA's own `namespace` label
becomes `exported_namespace`; with it, it stays `namespace`."""
KSM_DEPLOYMENT_REPLICAS = "kube_deployment_status_replicas"
KSM_HPA_DESIRED = "kube_horizontalpodautoscaler_status_desired_replicas"
KSM_HPA_CURRENT = "kube_horizontalpodautoscaler_status_current_replicas"
KSM_POD_RESTARTS = "kube_pod_container_status_restarts_total"
KSM_VPA_RECOMMENDATION = "kube_customresource_verticalpodautoscaler_recommendation_"
"""Prefix of the VPA's per-container recommendation, one metric per bound (VPA_BOUNDS)."""
VPA_BOUNDS = ("target", "lowerbound", "upperbound")
KSM_DEMO_CONDITION = "kube_customresource_scalingdemo_condition"
"""1 while the ScalingDemo's condition of label `type` is True, else 0."""
KUBE_STATE_METRICS = (
    KSM_DEPLOYMENT_REPLICAS,
    KSM_HPA_DESIRED,
    KSM_HPA_CURRENT,
    KSM_POD_RESTARTS,
    KSM_VPA_RECOMMENDATION,
    KSM_DEMO_CONDITION,
)
"""Every kube-state-metrics series queried: empty where kube-state-metrics is not scraped."""


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


def idle_members(labels: str) -> str:
    """Consumers holding no partition, per topic: members beyond the partition count (0 while
    every member has work, so the series exist)."""
    return f"sum by (topic) ({Metric.CONSUMER_ASSIGNED_PARTITIONS}{{{labels}}} == bool 0)"


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


def keda(metric: str, owner: Owner, name: str, scaler: str | None = None, window: str = "") -> str:
    """A KEDA series of the component's ScaledObject (one trigger's, if `scaler` is given),
    whichever label KEDA's namespace ended up in (KEDA_NAMESPACE_LABELS); `window` turns each
    selector into a range for the function the caller wraps it in."""
    scaled_object = f'scaledObject="{owner.child_name(name)}"'
    extra = f', scaler="{scaler}"' if scaler is not None else ""
    suffix = f"[{window}]" if window else ""
    found = " or ".join(
        f'{metric}{{{label}="{owner.namespace}", {scaled_object}{extra}}}{suffix}'
        for label in KEDA_NAMESPACE_LABELS
    )
    return f"({found})" if not window else found


def keda_total(owner: Owner, name: str, scaler: str) -> str:
    """KEDA's own reading of a trigger (or of the scalingModifiers formula): the total it hands
    the HPA, measured by KEDA outside the pods, so it has data at 0 replicas too."""
    return f"max({keda(KEDA_SCALER_VALUE, owner, name, scaler)})"


def keda_value(owner: Owner, name: str, trigger: Trigger) -> str:
    """KEDA's own reading of the trigger per replica, as the HPA divides it."""
    return f"{keda_total(owner, name, trigger.name)} / {replicas(owner, name)}"


def keda_active(owner: Owner, name: str) -> str:
    """1 per trigger KEDA calls active (its value above the activation threshold)."""
    return f"max by (scaler) ({keda(KEDA_SCALER_ACTIVE, owner, name)})"


def keda_errors(owner: Owner, name: str, window: str = RATE_WINDOW) -> str:
    """Failed readings per trigger over `window` (KEDA's counters start at 0, so the series
    exist before the first error)."""
    selectors = keda(KEDA_SCALER_ERRORS, owner, name, window=window).split(" or ")
    return " or ".join(f"sum by (scaler) (increase({selector}))" for selector in selectors)


def capacity(owner: Owner, name: str, threshold: float | int | str) -> str:
    """What the current replicas can take before the HPA adds one: threshold x replicas (0 at
    zero replicas, where `count` alone would be empty)."""
    return f"{threshold} * ({replicas(owner, name)} or vector(0))"


def hpa(metric: str, owner: Owner, name: str) -> str:
    """A kube-state-metrics series of KEDA's HPA for the component (`keda-hpa-<scaledObject>`)."""
    labels = scope(owner, (name,), label="horizontalpodautoscaler", prefix=KEDA_HPA_PREFIX)
    return f"max({metric}{{{labels}}})"


def vpa_recommendation(owner: Owner, name: str, bound: str, resource: str) -> str:
    """One bound of the VPA's recommendation for the workload container (cores or bytes)."""
    labels = scope(owner, (name,), label="verticalpodautoscaler")
    return (
        f'max({KSM_VPA_RECOMMENDATION}{bound}{{{labels}, container="{CONTAINER}", '
        f'resource="{resource}"}})'
    )
