"""Alert rules on one ScalingDemo, as a PrometheusRule for the Prometheus Operator.

Each rule watches what someone must act on and reads the series the dashboard draws, through
`promql`: the demo not Ready (the ScalingDemo's condition, exported by kube-state-metrics'
customResourceState), a backlog that keeps growing while the component is at maxReplicas
(scaling has nothing left to give), KEDA failing to read a trigger, worker restarts
(kube-state-metrics), and consumers holding no partition (replicas beyond the partition count).
Every expression is scoped to this demo, so each demo's rules stand alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..api import CHILDREN, Manifest, Owner
from ..spec import ScalingDemoSpec
from .common import metadata, stamp
from .promql import (
    KSM_DEMO_CONDITION,
    KSM_POD_RESTARTS,
    idle_members,
    keda_errors,
    replicas,
    scope,
    topic_lag,
)
from .workload import CONTAINER

COMPONENT = "alerts"
API_VERSION = CHILDREN["PrometheusRule"].api_version()
SEVERITY = "warning"
GROWTH_WINDOW = "10m"
"""How far back a backlog must have been growing, and for how long the growth must last."""
ERRORS_FOR = "5m"
ERRORS_WINDOW = "5m"
"""Wider than the panels' window: an alert must not depend on two scrapes within a minute."""
RESTARTS_WINDOW = "15m"
IDLE_FOR = "10m"
"""Longer than a rebalance: a member joining holds nothing until the group has settled."""


@dataclass(frozen=True)
class Rule:
    """An alert: `query` is the series it watches (as a panel would draw it), `condition` what
    makes it fire, so the query alone can be checked for data on a healthy demo."""

    alert: str
    query: str
    condition: str
    duration: str
    summary: str

    @property
    def expr(self) -> str:
        return f"{self.query} {self.condition}"

    def manifest(self, owner: Owner) -> dict[str, object]:
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": self.duration,
            "labels": {
                "severity": SEVERITY,
                "namespace": owner.namespace,
                "scalingdemo": owner.name,
            },
            "annotations": {"summary": self.summary},
        }


def name(owner: Owner) -> str:
    return owner.child_name(COMPONENT)


def group_name(owner: Owner) -> str:
    return f"scalingdemo.{owner.namespace}.{owner.name}"


def _not_ready(spec: ScalingDemoSpec, owner: Owner) -> Rule:
    condition = (
        f'{KSM_DEMO_CONDITION}{{namespace="{owner.namespace}", scalingdemo="{owner.name}", '
        'type="Ready"}'
    )
    return Rule(
        "ScalingDemoNotReady",
        f"max({condition})",
        "== 0",
        spec.monitoring.alerts.not_ready_for,
        f"ScalingDemo {owner.namespace}/{owner.name} is not Ready: "
        f"kubectl describe scalingdemo {owner.name} -n {owner.namespace} says why.",
    )


def _backlog_at_max(spec: ScalingDemoSpec, owner: Owner) -> list[Rule]:
    """One rule per kafkaLag trigger: its topic's lag rising while the replicas are capped."""
    found = []
    for component in spec.autoscaled():
        autoscaling = spec.component(component).autoscaling
        for trigger in autoscaling.triggers:
            if trigger.kafka_lag is None:
                continue
            backlog = topic_lag(spec, owner, trigger.kafka_lag.topic)
            at_max = f"{replicas(owner, component)} >= {autoscaling.max_replicas}"
            found.append(
                Rule(
                    "ScalingDemoBacklogGrowingAtMaxReplicas",
                    f"deriv(({backlog})[{GROWTH_WINDOW}:])",
                    f"> 0 and on () {at_max}",
                    GROWTH_WINDOW,
                    f"{owner.child_name(component)} runs maxReplicas "
                    f"({autoscaling.max_replicas}) and the backlog of trigger {trigger.name} "
                    "still grows: raise maxReplicas (and the partitions) or speed up the work.",
                )
            )
    return found


def _scaler_errors(spec: ScalingDemoSpec, owner: Owner) -> list[Rule]:
    return [
        Rule(
            "ScalingDemoKedaScalerErrors",
            f"({keda_errors(owner, component, ERRORS_WINDOW)})",
            "> 0",
            ERRORS_FOR,
            f"KEDA fails to read trigger {{{{ $labels.scaler }}}} of ScaledObject "
            f"{owner.child_name(component)}: kubectl describe scaledobject "
            f"{owner.child_name(component)} -n {owner.namespace}.",
        )
        for component in spec.autoscaled()
    ]


def _restarts(spec: ScalingDemoSpec, owner: Owner) -> list[Rule]:
    if "worker" not in spec.components():
        return []
    pods = (
        f'namespace="{owner.namespace}", pod=~"{owner.child_name("worker")}-.+", '
        f'container="{CONTAINER}"'
    )
    return [
        Rule(
            "ScalingDemoWorkerRestarts",
            f"sum by (pod) (increase({KSM_POD_RESTARTS}{{{pods}}}[{RESTARTS_WINDOW}]))",
            "> 0",
            "0s",
            "Worker pod {{ $labels.pod }} restarted: every restart rebalances the consumer "
            "group and redoes the records in flight.",
        )
    ]


def _idle_consumers(spec: ScalingDemoSpec, owner: Owner) -> list[Rule]:
    if "worker" not in spec.components():
        return []
    return [
        Rule(
            "ScalingDemoIdleConsumers",
            idle_members(scope(owner, ("worker",))),
            "> 0",
            IDLE_FOR,
            f"{{{{ $value }}}} {owner.child_name('worker')} consumer(s) of topic "
            "{{ $labels.topic }} hold no partition: more replicas than partitions add nothing.",
        )
    ]


def rules(spec: ScalingDemoSpec, owner: Owner) -> list[Rule]:
    """Every alert rule of the demo, in a stable order."""
    return [
        _not_ready(spec, owner),
        *_backlog_at_max(spec, owner),
        *_scaler_errors(spec, owner),
        *_restarts(spec, owner),
        *_idle_consumers(spec, owner),
    ]


def prometheus_rule(spec: ScalingDemoSpec, owner: Owner) -> Manifest:
    """One rule group per demo, labelled as spec.monitoring.alerts.labels says (a Prometheus
    selects rules by label, as it selects ServiceMonitors)."""
    wanted = spec.monitoring.alerts
    return stamp(
        {
            "apiVersion": API_VERSION,
            "kind": "PrometheusRule",
            "metadata": metadata(owner, COMPONENT, name(owner), wanted.labels),
            "spec": {
                "groups": [
                    {
                        "name": group_name(owner),
                        "rules": [rule.manifest(owner) for rule in rules(spec, owner)],
                    }
                ]
            },
        }
    )
