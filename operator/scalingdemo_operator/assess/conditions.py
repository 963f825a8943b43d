"""Conditions of a ScalingDemo computed from what was observed: pure, so transitions are testable.

Conditions follow metav1.Condition: lastTransitionTime moves only when the status flips, and
every condition carries the generation it was computed for. Ready summarises the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..kafka.model import TopicsResult

READY = "Ready"
WORKLOAD_AVAILABLE = "WorkloadAvailable"
AUTOSCALING_READY = "AutoscalingReady"
VERTICAL_SCALING_READY = "VerticalScalingReady"
TOPICS_READY = "TopicsReady"
MONITORING_READY = "MonitoringReady"
PAUSED = "Paused"

REPLICA_FIELDS = ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas")


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str

    @property
    def healthy(self) -> bool:
        return self.status == "True"


def merge_conditions(
    previous: Iterable[Mapping[str, Any]],
    current: Iterable[Condition],
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    """New condition list; keeps each lastTransitionTime unless that condition's status flipped.

    Conditions of types this reconcile did not compute (added by other concerns) are kept.
    """
    old = {item["type"]: item for item in previous}
    merged = dict(old)
    for condition in current:
        before = old.get(condition.type)
        kept = before is not None and before.get("status") == condition.status
        merged[condition.type] = {
            "type": condition.type,
            "status": condition.status,
            "reason": condition.reason,
            "message": condition.message,
            "observedGeneration": generation,
            "lastTransitionTime": before["lastTransitionTime"] if before and kept else now,
        }
    return [merged[key] for key in sorted(merged, key=lambda name: (name != READY, name))]


def _available(deployment: Mapping[str, Any]) -> bool:
    status = deployment.get("status", {})
    if status.get("observedGeneration", 0) < deployment["metadata"].get("generation", 0):
        return False
    for condition in status.get("conditions", []):
        if condition.get("type") == "Available":
            return bool(condition.get("status") == "True")
    return False


def workload_condition(
    wanted: Iterable[str], deployments: Mapping[str, Mapping[str, Any]]
) -> Condition:
    """WorkloadAvailable from the Deployments' own Available conditions."""
    waiting = []
    for name in wanted:
        deployment = deployments.get(name)
        if deployment is None or not _available(deployment):
            waiting.append(name)
    if waiting:
        return Condition(
            WORKLOAD_AVAILABLE,
            "False",
            "DeploymentsUnavailable",
            f"waiting for Deployment(s) {', '.join(sorted(waiting))} to become available",
        )
    return Condition(
        WORKLOAD_AVAILABLE, "True", "DeploymentsAvailable", "all Deployments are available"
    )


def ready_condition(conditions: Iterable[Condition]) -> Condition:
    """Ready is True when every other condition is; else it names the first unhealthy one."""
    for condition in conditions:
        if not condition.healthy:
            return Condition(READY, "False", condition.reason, condition.message)
    return Condition(READY, "True", "Ready", "every child exists and is available")


def replica_counts(deployment: Mapping[str, Any] | None) -> dict[str, int]:
    status = (deployment or {}).get("status", {})
    return {name: int(status.get(name, 0)) for name in REPLICA_FIELDS}


@dataclass(frozen=True)
class Scaler:
    """An optional add-on whose objects the operator generates, and how to report on it."""

    condition: str
    kind: str
    missing_reason: str
    install_hint: str


KEDA = Scaler(
    AUTOSCALING_READY,
    "ScaledObject",
    "KEDANotInstalled",
    "KEDA is not installed (no keda.sh/v1alpha1 ScaledObject CRD): install KEDA, e.g. "
    "`helm install keda kedacore/keda -n keda --create-namespace`; the operator retries by itself",
)
VPA = Scaler(
    VERTICAL_SCALING_READY,
    "VerticalPodAutoscaler",
    "VPANotInstalled",
    "the Vertical Pod Autoscaler is not installed (no autoscaling.k8s.io/v1 "
    "VerticalPodAutoscaler CRD): install it from kubernetes/autoscaler's vertical-pod-autoscaler; "
    "the operator retries by itself",
)


MONITORING = Scaler(
    MONITORING_READY,
    "ServiceMonitor",
    "PrometheusOperatorNotInstalled",
    "no ServiceMonitors: the Prometheus Operator is not installed (no monitoring.coreos.com/v1 "
    "ServiceMonitor CRD). Prometheus setups that discover pods by their prometheus.io "
    "annotations (spec.monitoring.podAnnotations) still scrape the demo; with the Prometheus "
    "Operator installed (e.g. kube-prometheus-stack) the operator adds the ServiceMonitors by "
    "itself",
)
"""Optional in a stronger sense than KEDA and VPA: its absence is reported, never held against
Ready and never announced with a Warning, since the demo still works and nobody must act."""


METRIC_OF_TRIGGER = re.compile(r"\bs(\d+)-")
"""KEDA names each trigger's metric `s<index>-<metric>`, the index being the trigger's position
in spec.triggers; the HPA's messages about a metric it cannot get carry that name."""


def failing_triggers(scaled_object: Mapping[str, Any]) -> list[str]:
    """Names of the triggers KEDA reports failing, in spec order.

    KEDA's Ready message does not say which trigger fails. Its health report does (kept only
    when a fallback is set), and so does its HPAActive condition, which passes on the HPA's
    message naming the metric it cannot get. A ScaledObject with one trigger needs neither.
    """
    triggers = [item.get("name", "") for item in scaled_object.get("spec", {}).get("triggers", [])]
    status = scaled_object.get("status", {})
    said = [
        metric
        for metric, health in status.get("health", {}).items()
        if health.get("status") == "Failing"
    ] + [
        item.get("message", "")
        for item in status.get("conditions", [])
        if item.get("status") == "False"
    ]
    positions = {int(index) for text in said for index in METRIC_OF_TRIGGER.findall(text)}
    if not positions and len(triggers) == 1:
        positions = {0}
    return [triggers[index] for index in sorted(positions) if index < len(triggers)]


def _keda_problem(scaled_object: Mapping[str, Any]) -> str | None:
    """KEDA's own verdict on a ScaledObject, when it has given one and it is not Ready, with
    the triggers that fail, so the user knows which part of the spec to look at."""
    for condition in scaled_object.get("status", {}).get("conditions", []):
        if condition.get("type") == "Ready" and condition.get("status") == "False":
            name = scaled_object["metadata"]["name"]
            verdict = condition.get("message") or condition.get("reason")
            failing = failing_triggers(scaled_object)
            named = f" (failing trigger(s): {', '.join(failing)})" if failing else ""
            return f"ScaledObject {name}: {verdict}{named}"
    return None


def _keda_activity(scaled_object: Mapping[str, Any]) -> str | None:
    """KEDA's Active condition: whether a trigger asks for more than the minimum right now.

    Surfaced so `kubectl describe scalingdemo` shows why replicas are moving (or not).
    """
    for condition in scaled_object.get("status", {}).get("conditions", []):
        if condition.get("type") == "Active" and condition.get("status") in ("True", "False"):
            state = "active" if condition["status"] == "True" else "idle"
            detail = condition.get("message") or condition.get("reason") or ""
            return f"ScaledObject {scaled_object['metadata']['name']} is {state}: {detail}"
    return None


def scaling_condition(
    scaler: Scaler,
    wanted: Sequence[str],
    observed: Iterable[Mapping[str, Any]],
    *,
    missing: bool,
    failures: Sequence[str],
    notes: Sequence[str] = (),
) -> Condition:
    """AutoscalingReady / VerticalScalingReady from what applying the scaler's objects showed.

    True with reason NotRequested when no component wants one (so Ready is not held back);
    False when the add-on's CRD is missing, an apply failed, or KEDA reports a ScaledObject
    not Ready (KEDA's message says why, e.g. an unreachable broker). When True, the message
    carries KEDA's Active verdict per ScaledObject.
    """
    if not wanted:
        return Condition(scaler.condition, "True", "NotRequested", "no component asks for it")
    if missing:
        return Condition(scaler.condition, "False", scaler.missing_reason, scaler.install_hint)
    if failures:
        return Condition(scaler.condition, "False", "ApplyFailed", "; ".join(failures))
    problems = [
        found
        for item in observed
        if item.get("kind") == scaler.kind and (found := _keda_problem(item)) is not None
    ]
    if problems:
        return Condition(scaler.condition, "False", f"{scaler.kind}NotReady", "; ".join(problems))
    activity = [
        found
        for item in observed
        if item.get("kind") == scaler.kind and (found := _keda_activity(item)) is not None
    ]
    message = f"{scaler.kind}(s) {', '.join(wanted)} applied"
    return Condition(scaler.condition, "True", "Applied", "; ".join([message, *activity, *notes]))


def topics_condition(result: TopicsResult) -> Condition:
    """TopicsReady from a reconcile through the admin API: the first refusal or failure wins
    the reason (the message lists them all); True lists each topic's size."""
    problems = [*result.refused, *result.failed]
    if problems:
        message = "; ".join(event.message for event in problems)
        return Condition(TOPICS_READY, "False", problems[0].reason, message)
    sizes = ", ".join(
        f"{topic.name} ({topic.partitions} partitions, replication factor "
        f"{topic.replication_factor})"
        for topic in result.topics
    )
    return Condition(TOPICS_READY, "True", "TopicsReconciled", f"topics as the spec says: {sizes}")


def strimzi_topics_condition(
    wanted: Sequence[str], observed: Iterable[Mapping[str, Any]], *, failures: Sequence[str]
) -> Condition:
    """TopicsReady from the KafkaTopics and Strimzi's verdict in their Ready conditions."""
    if failures:
        return Condition(TOPICS_READY, "False", "ApplyFailed", "; ".join(failures))
    verdicts = {
        item["metadata"]["name"]: next(
            (c for c in item.get("status", {}).get("conditions", []) if c.get("type") == "Ready"),
            None,
        )
        for item in observed
        if item.get("kind") == "KafkaTopic"
    }
    problems = [
        f"KafkaTopic {name}: {verdict.get('message') or verdict.get('reason')}"
        for name in wanted
        if (verdict := verdicts.get(name)) is not None and verdict.get("status") == "False"
    ]
    if problems:
        return Condition(TOPICS_READY, "False", "KafkaTopicNotReady", "; ".join(problems))
    waiting = [name for name in wanted if (verdicts.get(name) or {}).get("status") != "True"]
    if waiting:
        return Condition(
            TOPICS_READY,
            "Unknown",
            "WaitingForStrimzi",
            f"KafkaTopic(s) {', '.join(waiting)} applied; waiting for Strimzi's topic operator "
            "to report them Ready (it must watch this namespace)",
        )
    return Condition(
        TOPICS_READY, "True", "KafkaTopicsReady", f"KafkaTopic(s) {', '.join(wanted)} are Ready"
    )
