"""The Grafana dashboard of one ScalingDemo, in a ConfigMap for Grafana's dashboard sidecar.

Every query comes from `promql`, the module the trigger presets use: scoped to this demo and
aggregated across pods, so the panels stay right whatever the replica count, over the triggers'
window, so a panel shows the number a trigger acts on.

The scaling row explains each trigger as the HPA does: its value per replica against the
threshold, drawn as a constant line from the current spec. The HPA adds replicas while the
value is above the line and removes them while it is below, so editing a threshold moves the
line at the next reconcile. Panels that need kube-state-metrics or KEDA's own metrics stay
empty where those are not scraped (EXTERNAL_METRICS).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from scalingdemo_workload.contract import Metric

from ..api import Manifest, Owner
from ..quantities import amount
from ..spec import ScalingDemoSpec, Trigger
from .common import metadata, stamp
from .keda import KEDA_HPA_PREFIX
from .promql import (
    KEDA_SCALER_VALUE,
    UP,
    constant,
    keda_value,
    lag,
    quantile,
    rate,
    replicas,
    scope,
    topic_lag,
    trigger_query,
)

COMPONENT = "dashboard"
UID_LIMIT = 40
"""Grafana refuses dashboard uids longer than this."""
UID_PREFIX = "scalingdemo-"
SCHEMA_VERSION = 39
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = {"type": "prometheus", "uid": f"${{{DATASOURCE_VARIABLE}}}"}
QUANTILES = (0.5, 0.95, 0.99)
THRESHOLD_REF = "threshold"
"""refId prefix of the constant lines drawn from the spec (thresholds, maxReplicas)."""
KSM_DEPLOYMENT_REPLICAS = "kube_deployment_status_replicas"
KSM_HPA_DESIRED = "kube_horizontalpodautoscaler_status_desired_replicas"
EXTERNAL_METRICS = (KSM_DEPLOYMENT_REPLICAS, KSM_HPA_DESIRED, KEDA_SCALER_VALUE)
"""Series of kube-state-metrics and KEDA: queries on them are empty where those are not scraped."""
PANEL_WIDTH, PANEL_HEIGHT, GRID_WIDTH = 12, 8, 24
RESOURCE_METRICS = {"cpu": Metric.CPU_UTILIZATION, "memory": Metric.MEMORY_RSS}
"""The workload's own reading of what a cpu/memory trigger measures (cores, bytes)."""


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str
    ref: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    targets: tuple[Target, ...]
    description: str


def config_map_name(owner: Owner) -> str:
    return owner.child_name(COMPONENT)


def uid(owner: Owner) -> str:
    """Stable across reconciles and operator restarts, unique per namespace/name, short enough."""
    digest = hashlib.sha256(f"{owner.namespace}/{owner.name}".encode()).hexdigest()
    return f"{UID_PREFIX}{digest}"[:UID_LIMIT]


def _quantiles(histogram: str, labels: str, by: tuple[str, ...] = ()) -> tuple[Target, ...]:
    suffix = "".join(f" {{{{{label}}}}}" for label in by)
    return tuple(
        Target(
            quantile(value, histogram, labels, by),
            f"p{round(value * 100)}{suffix}",
            chr(ord("A") + index),
        )
        for index, value in enumerate(QUANTILES)
    )


def _traffic(owner: Owner) -> list[Panel]:
    labels = scope(owner)
    requests = rate(Metric.HTTP_REQUESTS, labels)
    return [
        Panel(
            "Requests per second by route and status",
            "reqps",
            (Target(f"sum by (route, status) ({requests})", "{{route}} {{status}}", "A"),),
            "Summed over every pod of the demo.",
        ),
        Panel(
            "Request latency",
            "s",
            _quantiles(Metric.HTTP_REQUEST_DURATION, labels),
            "Quantiles over every pod: the buckets are summed before interpolating, since "
            "averaging per-pod quantiles is meaningless.",
        ),
    ]


def _kafka(owner: Owner) -> list[Panel]:
    labels = scope(owner)
    produced = rate(Metric.RECORDS_PRODUCED, labels)
    consumed = rate(Metric.RECORDS_CONSUMED, labels)
    processed = rate(Metric.RECORDS_PROCESSED, labels)
    return [
        Panel(
            "Produced records per second by topic",
            "ops",
            (Target(f"sum by (topic) ({produced})", "{{topic}}", "A"),),
            "Records Kafka acknowledged, summed over the API pods.",
        ),
        Panel(
            "Consumed records per second by topic",
            "ops",
            (
                Target(f"sum by (topic) ({consumed})", "fetched {{topic}}", "A"),
                Target(f"sum by (topic) ({processed})", "processed {{topic}}", "B"),
            ),
            "Records fetched and processed, summed over the consuming pods.",
        ),
        Panel(
            "Consumer lag by topic",
            "short",
            (Target(lag(labels, ("topic",)), "{{topic}}", "A"),),
            "Every consumer reports its group's whole lag: max per (topic, group) counts it once.",
        ),
    ]


def _processing(owner: Owner) -> list[Panel]:
    labels = scope(owner)
    return [
        Panel(
            "Tasks in progress",
            "short",
            (
                Target(f"sum({Metric.TASKS_IN_PROGRESS}{{{labels}}})", "all pods", "A"),
                Target(f"sum by (pod) ({Metric.TASKS_IN_PROGRESS}{{{labels}}})", "{{pod}}", "B"),
            ),
            "Records being processed right now.",
        ),
        Panel(
            "Task duration by topic",
            "s",
            _quantiles(Metric.TASK_DURATION, labels, ("topic",)),
            "Quantiles over every pod, per topic.",
        ),
    ]


def _resources(owner: Owner) -> list[Panel]:
    labels = scope(owner)
    return [
        Panel(
            "CPU per pod",
            "short",
            (Target(f"sum by (pod) ({Metric.CPU_UTILIZATION}{{{labels}}})", "{{pod}}", "A"),),
            "Cores used by the workload process (1 = one core busy).",
        ),
        Panel(
            "Memory per pod",
            "bytes",
            (Target(f"sum by (pod) ({Metric.MEMORY_RSS}{{{labels}}})", "{{pod}}", "A"),),
            "Resident memory of the workload process.",
        ),
    ]


def _replica_panel(spec: ScalingDemoSpec, owner: Owner) -> Panel:
    scaled = spec.autoscaled()
    deployments = scope(owner, list(spec.components()), label="deployment")
    targets = [
        Target(
            f"count by (service) ({UP}{{{scope(owner)}}})",
            "{{service}} pods scraped",
            "A",
        ),
        Target(
            f"sum by (deployment) ({KSM_DEPLOYMENT_REPLICAS}{{{deployments}}})",
            "{{deployment}} replicas",
            "B",
        ),
    ]
    if scaled:
        hpas = scope(owner, scaled, label="horizontalpodautoscaler", prefix=KEDA_HPA_PREFIX)
        targets.append(
            Target(
                f"sum by (horizontalpodautoscaler) ({KSM_HPA_DESIRED}{{{hpas}}})",
                "{{horizontalpodautoscaler}} desired",
                "C",
            )
        )
    targets += [
        Target(
            constant(spec.component(name).autoscaling.max_replicas),
            f"{owner.child_name(name)} maxReplicas",
            f"{THRESHOLD_REF}-{name}",
        )
        for name in scaled
    ]
    return Panel(
        "Replicas",
        "short",
        tuple(targets),
        "Pods Prometheus scrapes per component; with kube-state-metrics the Deployments' "
        "replicas and the desired replicas of KEDA's HPAs; the maxReplicas ceilings.",
    )


def _trigger_line(
    spec: ScalingDemoSpec, owner: Owner, name: str, trigger: Trigger
) -> tuple[str, str, float | int | str]:
    """A trigger's value per replica as the HPA compares it, its unit, and its threshold.

    KEDA hands Kafka lag and Prometheus values to the HPA as AverageValue targets (total over
    replicas); cpu/memory Utilization is a percentage of the container's request, AverageValue
    an amount per pod. The workload's own CPU and memory gauges stand in for the kubelet's.
    """
    pods = replicas(owner, name)
    if trigger.kafka_lag is not None:
        value = topic_lag(spec, owner, trigger.kafka_lag.topic)
        return f"{value} / {pods}", "short", trigger.kafka_lag.lag_threshold
    if trigger.prometheus is not None:
        value = trigger_query(spec, owner, trigger.prometheus)
        return f"({value}) / {pods}", "short", trigger.prometheus.threshold
    kind = trigger.kind
    resource = getattr(trigger, kind)
    usage = f"avg({RESOURCE_METRICS[kind]}{{{scope(owner, (name,))}}})"
    unit = "short" if kind == "cpu" else "bytes"
    if resource.metric_type == "AverageValue":
        return usage, unit, float(amount(resource.value))
    request = float(amount(getattr(spec.component(name).resources.requests, kind)))
    return f"100 * {usage} / {request}", "percent", resource.value


def _kind_name(trigger: Trigger) -> str:
    """The trigger's kind as the spec spells it (kafkaLag, not kafka_lag)."""
    return type(trigger).model_fields[trigger.kind].alias or trigger.kind


def _trigger_panel(spec: ScalingDemoSpec, owner: Owner, name: str, trigger: Trigger) -> Panel:
    value, unit, threshold = _trigger_line(spec, owner, name, trigger)
    targets = [Target(value, "per replica", "A")]
    if trigger.kind in ("kafka_lag", "prometheus"):
        targets.append(Target(keda_value(owner, name, trigger), "per replica (KEDA)", "B"))
    targets.append(Target(constant(threshold), "threshold", THRESHOLD_REF))
    return Panel(
        f"{owner.child_name(name)}: trigger {trigger.name} ({_kind_name(trigger)})",
        unit,
        tuple(targets),
        "Above the threshold line the HPA adds replicas, below it removes them "
        "(within minReplicas..maxReplicas).",
    )


def _scaling(spec: ScalingDemoSpec, owner: Owner) -> list[Panel]:
    panels = [_replica_panel(spec, owner)]
    for name in spec.autoscaled():
        panels += [
            _trigger_panel(spec, owner, name, trigger)
            for trigger in spec.component(name).autoscaling.triggers
        ]
    return panels


def _panel(panel: Panel, ident: int, x: int, y: int) -> dict[str, Any]:
    lines = [
        {
            "matcher": {"id": "byFrameRefID", "options": target.ref},
            "properties": [
                {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            ],
        }
        for target in panel.targets
        if target.ref.startswith(THRESHOLD_REF)
    ]
    return {
        "id": ident,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": PANEL_HEIGHT, "w": PANEL_WIDTH, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": lines},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {
                "datasource": DATASOURCE,
                "expr": target.expr,
                "legendFormat": target.legend,
                "refId": target.ref,
            }
            for target in panel.targets
        ],
    }


def _layout(rows: list[tuple[str, list[Panel]]]) -> list[dict[str, Any]]:
    """Rows of two panels side by side, ids and grid positions in reading order."""
    found: list[dict[str, Any]] = []
    y = 0
    for title, panels in rows:
        found.append(
            {
                "id": len(found) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
            }
        )
        y += 1
        for index, panel in enumerate(panels):
            x = (index * PANEL_WIDTH) % GRID_WIDTH
            found.append(_panel(panel, len(found) + 1, x, y))
            if x + PANEL_WIDTH >= GRID_WIDTH or index == len(panels) - 1:
                y += PANEL_HEIGHT
    return found


def dashboard(spec: ScalingDemoSpec, owner: Owner) -> dict[str, Any]:
    """The dashboard model Grafana imports: a datasource variable instead of a fixed uid."""
    rows = [
        ("Traffic", _traffic(owner)),
        ("Kafka", _kafka(owner)),
        ("Processing", _processing(owner)),
        ("Resources", _resources(owner)),
        ("Scaling", _scaling(spec, owner)),
    ]
    return {
        "uid": uid(owner),
        "title": f"ScalingDemo {owner.namespace}/{owner.name}",
        "description": "Generated by the scalingdemo operator from the ScalingDemo; "
        "edits in Grafana are overwritten.",
        "tags": ["scalingdemo"],
        "editable": False,
        "schemaVersion": SCHEMA_VERSION,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": DATASOURCE_VARIABLE,
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "hide": 0,
                    "refresh": 1,
                    "current": {},
                }
            ]
        },
        "panels": _layout(rows),
    }


def data_key(owner: Owner) -> str:
    """The file name the sidecar writes: namespaced, as it gathers every namespace in one folder."""
    return f"scalingdemo-{owner.namespace}-{owner.name}.json"


def config_map(spec: ScalingDemoSpec, owner: Owner) -> Manifest:
    """The dashboard ConfigMap, labelled and annotated for the sidecar as the spec says."""
    wanted = spec.monitoring.dashboard
    found = metadata(owner, COMPONENT, config_map_name(owner), wanted.labels)
    found["annotations"] = {wanted.folder_annotation: wanted.folder}
    model = json.dumps(dashboard(spec, owner), sort_keys=True)
    return stamp(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": found,
            "data": {data_key(owner): model},
        }
    )
