"""The Grafana dashboard of one ScalingDemo, in a ConfigMap for Grafana's dashboard sidecar.

Built with Grafana's own typed builders (grafana-foundation-sdk): panels, queries and the
datasource variable are the SDK's objects, so the model follows Grafana's schema and no JSON is
assembled here. Every query comes from `promql`, the module the trigger presets and the alert
rules use: scoped to this demo and aggregated across pods, so the panels stay right whatever the
replica count, over the triggers' window, so a panel shows the number a trigger acts on.

The scaling row explains each trigger as the HPA does: its value per replica against the
threshold, drawn as a constant line from the current spec. The KEDA row shows KEDA's side of
the same decision: which triggers it calls active, its own reading of each against the
capacity of the current replicas and the activation line, its errors, and the HPA's desired
and current replicas. KEDA measures outside the pods, so its lag has data at 0 replicas. The
VPA row draws the recommendation against the usage. Panels on kube-state-metrics
(promql.KUBE_STATE_METRICS) or KEDA stay empty where those are not scraped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from scalingdemo_workload.contract import Metric

from ..api import Manifest, Owner
from ..quantities import amount
from ..spec import ScalingDemoSpec, Trigger
from .common import metadata, stamp
from .promql import (
    KEDA_COMPOSITE_SCALER,
    KSM_DEPLOYMENT_REPLICAS,
    KSM_HPA_CURRENT,
    KSM_HPA_DESIRED,
    RATE_WINDOW,
    UP,
    VPA_BOUNDS,
    capacity,
    constant,
    hpa,
    idle_members,
    keda_active,
    keda_errors,
    keda_total,
    keda_value,
    lag,
    quantile,
    rate,
    replicas,
    scope,
    topic_lag,
    trigger_query,
    vpa_recommendation,
)

COMPONENT = "dashboard"
UID_LIMIT = 40
"""Grafana refuses dashboard uids longer than this."""
UID_PREFIX = "scalingdemo-"
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = dashboard_models.DataSourceRef(
    type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}"
)
QUANTILES = (0.5, 0.95, 0.99)
THRESHOLD_REF = "threshold"
"""refId prefix of the lines drawn from the spec (thresholds, capacity, activation, ceilings)."""
ACTIVATION_REF = f"{THRESHOLD_REF}-activation"
LINE_COLORS = {ACTIVATION_REF: "orange", THRESHOLD_REF: "red"}
"""Colour of a line by refId prefix, the longest matching prefix first."""
PANEL_WIDTH, PANEL_HEIGHT = 12, 8
RESOURCE_METRICS = {"cpu": Metric.CPU_UTILIZATION, "memory": Metric.MEMORY_RSS}
"""The workload's own reading of what a cpu/memory trigger measures (cores, bytes)."""
RESOURCE_UNITS = {"cpu": "short", "memory": "bytes"}


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


def _ref(index: int) -> str:
    return chr(ord("A") + index)


def _quantiles(histogram: str, labels: str, by: tuple[str, ...] = ()) -> tuple[Target, ...]:
    suffix = "".join(f" {{{{{label}}}}}" for label in by)
    return tuple(
        Target(quantile(value, histogram, labels, by), f"p{round(value * 100)}{suffix}", _ref(i))
        for i, value in enumerate(QUANTILES)
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


def _kafka_lag_triggers(spec: ScalingDemoSpec) -> list[tuple[str, Trigger]]:
    """(component, trigger) of every kafkaLag trigger KEDA evaluates."""
    return [
        (name, trigger)
        for name in spec.autoscaled()
        for trigger in spec.component(name).autoscaling.triggers
        if trigger.kafka_lag is not None
    ]


def _kafka(spec: ScalingDemoSpec, owner: Owner) -> list[Panel]:
    labels = scope(owner)
    produced = rate(Metric.RECORDS_PRODUCED, labels)
    consumed = rate(Metric.RECORDS_CONSUMED, labels)
    processed = rate(Metric.RECORDS_PROCESSED, labels)
    assigned = f"{Metric.CONSUMER_ASSIGNED_PARTITIONS}{{{labels}}}"
    rebalances = f"increase({Metric.CONSUMER_REBALANCES}{{{labels}}}[{RATE_WINDOW}])"
    keda_lag = [
        Target(
            keda_total(owner, name, trigger.name),
            f"{owner.child_name(name)} {trigger.name} (KEDA)",
            _ref(index + 1),
        )
        for index, (name, trigger) in enumerate(_kafka_lag_triggers(spec))
    ]
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
            (Target(lag(labels, ("topic",)), "{{topic}}", "A"), *keda_lag),
            "The consumers' own reading (every consumer reports its group's whole lag: max per "
            "(topic, group) counts it once) disappears with the last consumer; KEDA's reading "
            "of each kafkaLag trigger is taken outside the pods and stays at 0 replicas (KEDA "
            "caps it at partitions x lagThreshold unless allowIdleConsumers is set).",
        ),
        Panel(
            "Partitions assigned per pod",
            "short",
            (
                Target(f"sum by (pod, topic) ({assigned})", "{{pod}} {{topic}}", "A"),
                Target(idle_members(labels), "idle members {{topic}}", "B"),
            ),
            "A member holding 0 partitions is idle: the group has more consumers than the topic "
            "has partitions, so replicas beyond the partition count add nothing.",
        ),
        Panel(
            "Consumer-group rebalances",
            "short",
            (Target(f"sum by (pod, topic) ({rebalances})", "{{pod}} {{topic}}", "A"),),
            "Assignments each member received in the last minute: every scaling step and every "
            "restart moves partitions, and records in flight are redone.",
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


def _ceiling(spec: ScalingDemoSpec, owner: Owner, name: str) -> Target:
    return Target(
        constant(spec.component(name).autoscaling.max_replicas),
        f"{owner.child_name(name)} maxReplicas",
        f"{THRESHOLD_REF}-{name}",
    )


def _replica_panel(spec: ScalingDemoSpec, owner: Owner) -> Panel:
    deployments = scope(owner, list(spec.components()), label="deployment")
    targets = [
        Target(f"count by (service) ({UP}{{{scope(owner)}}})", "{{service}} pods scraped", "A"),
        Target(
            f"sum by (deployment) ({KSM_DEPLOYMENT_REPLICAS}{{{deployments}}})",
            "{{deployment}} replicas",
            "B",
        ),
        *(_ceiling(spec, owner, name) for name in spec.autoscaled()),
    ]
    return Panel(
        "Replicas",
        "short",
        tuple(targets),
        "Pods Prometheus scrapes per component; with kube-state-metrics the Deployments' "
        "replicas; the maxReplicas ceilings.",
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
    if resource.metric_type == "AverageValue":
        return usage, RESOURCE_UNITS[kind], float(amount(resource.value))
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


def _keda_reading(
    owner: Owner,
    name: str,
    title: str,
    scaler: str,
    threshold: float | int | str,
    activation: float | int | str,
) -> Panel:
    """KEDA's own total against what the replicas can take and against the activation line."""
    return Panel(
        f"{owner.child_name(name)}: KEDA {title}",
        "short",
        (
            Target(keda_total(owner, name, scaler), "value (KEDA)", "A"),
            Target(capacity(owner, name, threshold), "threshold x replicas", THRESHOLD_REF),
            Target(constant(activation), "activation", ACTIVATION_REF),
        ),
        "The total KEDA hands the HPA. Above threshold x replicas the HPA adds replicas; at "
        "0 replicas KEDA scales to 1 once the value passes the activation line.",
    )


def _keda_readings(spec: ScalingDemoSpec, owner: Owner, name: str) -> list[Panel]:
    autoscaling = spec.component(name).autoscaling
    panels = []
    threshold: float | int | str
    activation: float | int | str
    for trigger in autoscaling.triggers:
        if trigger.kafka_lag is not None:
            lag_trigger = trigger.kafka_lag
            threshold, activation = lag_trigger.lag_threshold, lag_trigger.activation_lag_threshold
        elif trigger.prometheus is not None:
            threshold = trigger.prometheus.threshold
            activation = trigger.prometheus.activation_threshold
        else:
            continue
        panels.append(
            _keda_reading(
                owner, name, f"trigger {trigger.name}", trigger.name, threshold, activation
            )
        )
    if autoscaling.scaling_modifiers is not None:
        panels.append(
            _keda_reading(
                owner,
                name,
                f"scalingModifiers ({autoscaling.scaling_modifiers.formula})",
                KEDA_COMPOSITE_SCALER,
                autoscaling.scaling_modifiers.target,
                0,
            )
        )
    return panels


def _keda(spec: ScalingDemoSpec, owner: Owner) -> list[Panel]:
    panels = []
    for name in spec.autoscaled():
        scaled_object = owner.child_name(name)
        panels += [
            Panel(
                f"{scaled_object}: KEDA scaler active",
                "short",
                (Target(keda_active(owner, name), "{{scaler}}", "A"),),
                "1 while KEDA calls the trigger active (above its activation threshold); with "
                "scalingModifiers the formula's verdict is the scaler composite-metric.",
            ),
            Panel(
                f"{scaled_object}: KEDA scaler errors",
                "short",
                (Target(keda_errors(owner, name), "{{scaler}}", "A"),),
                "Failed readings per trigger in the last minute; after failureThreshold of them "
                "in a row KEDA applies the fallback replicas, if one is set.",
            ),
            Panel(
                f"{scaled_object}: HPA desired vs current replicas",
                "short",
                (
                    Target(hpa(KSM_HPA_DESIRED, owner, name), "desired", "A"),
                    Target(hpa(KSM_HPA_CURRENT, owner, name), "current", "B"),
                    _ceiling(spec, owner, name),
                ),
                "What KEDA's HPA asks for and what it has (kube-state-metrics).",
            ),
            *_keda_readings(spec, owner, name),
        ]
    return panels


def _vpa(spec: ScalingDemoSpec, owner: Owner) -> list[Panel]:
    panels = []
    for name in spec.vertically_scaled():
        usage_labels = scope(owner, (name,))
        for resource in spec.component(name).vertical_scaling.controlled_resources:
            bounds = [
                Target(vpa_recommendation(owner, name, bound, resource), bound, _ref(index))
                for index, bound in enumerate(VPA_BOUNDS)
            ]
            usage = f"max by (pod) ({RESOURCE_METRICS[resource]}{{{usage_labels}}})"
            panels.append(
                Panel(
                    f"{owner.child_name(name)}: VPA {resource} recommendation vs usage",
                    RESOURCE_UNITS[resource],
                    (*bounds, Target(usage, "used by {{pod}}", _ref(len(bounds)))),
                    "The VPA's target and bounds for the workload container (kube-state-metrics "
                    "customResourceState) against what each pod's workload process uses.",
                )
            )
    return panels


def _line_color(ref: str) -> str | None:
    return next(
        (
            color
            for prefix, color in sorted(LINE_COLORS.items(), reverse=True)
            if ref.startswith(prefix)
        ),
        None,
    )


def _timeseries(panel: Panel, ident: int) -> timeseries.Panel:
    """The SDK's timeseries panel: lines from the spec dashed and coloured by their refId."""
    built = (
        timeseries.Panel()
        .id(ident)
        .title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .unit(panel.unit)
        .height(PANEL_HEIGHT)
        .span(PANEL_WIDTH)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common_models.LegendDisplayMode.LIST)
            .placement(common_models.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    for target in panel.targets:
        built = built.with_target(
            prometheus.Dataquery()
            .expr(target.expr)
            .legend_format(target.legend)
            .ref_id(target.ref)
            .datasource(DATASOURCE)
        )
        color = _line_color(target.ref)
        if color is not None:
            built = built.override_by_query(
                target.ref,
                [
                    dashboard_models.DynamicConfigValue(
                        id_val="color", value={"mode": "fixed", "fixedColor": color}
                    ),
                    dashboard_models.DynamicConfigValue(
                        id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
                    ),
                ],
            )
    return built


def rows(spec: ScalingDemoSpec, owner: Owner) -> list[tuple[str, list[Panel]]]:
    """The dashboard's rows in reading order; rows without panels are left out."""
    found = [
        ("Traffic", _traffic(owner)),
        ("Kafka", _kafka(spec, owner)),
        ("Processing", _processing(owner)),
        ("Resources", _resources(owner)),
        ("Scaling", _scaling(spec, owner)),
        ("KEDA", _keda(spec, owner)),
        ("Vertical Pod Autoscaler", _vpa(spec, owner)),
    ]
    return [(title, panels) for title, panels in found if panels]


def builder(spec: ScalingDemoSpec, owner: Owner) -> dashboard_builders.Dashboard:
    """The SDK's dashboard: a datasource variable instead of a fixed uid, ids in reading order,
    the grid laid out by the SDK (rows full width, panels two side by side)."""
    built = (
        dashboard_builders.Dashboard(f"ScalingDemo {owner.namespace}/{owner.name}")
        .uid(uid(owner))
        .description(
            "Generated by the scalingdemo operator from the ScalingDemo; edits in Grafana are "
            "overwritten."
        )
        .tags(["scalingdemo"])
        .readonly()
        .refresh("10s")
        .time("now-30m", "now")
        .with_variable(
            dashboard_builders.DatasourceVariable(DATASOURCE_VARIABLE)
            .label("Data source")
            .type("prometheus")
        )
    )
    ident = 0
    for title, panels in rows(spec, owner):
        ident += 1
        built = built.with_row(dashboard_builders.Row(title).id(ident))
        for panel in panels:
            ident += 1
            built = built.with_panel(_timeseries(panel, ident))
    return built


def dashboard(spec: ScalingDemoSpec, owner: Owner) -> dict[str, Any]:
    """The dashboard model Grafana imports, as the SDK encodes it."""
    found: dict[str, Any] = json.loads(json.dumps(builder(spec, owner).build(), cls=JSONEncoder))
    return found


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
