"""Pure functions from a spec to the manifests of every child; no I/O, no kopf.

`desired_children` is the one list the reconcile applies; every concern (workload, KEDA, VPA,
monitoring, dashboard, alerts, Strimzi topics) adds its builders here.
"""

from __future__ import annotations

from ..api import Manifest, Owner
from ..spec import TOPIC_ROLES, ScalingDemoSpec
from . import alerts, dashboard, keda, monitoring, strimzi, vpa, workload


def desired_children(
    spec: ScalingDemoSpec, owner: Owner, strimzi_version: str | None = None
) -> list[Manifest]:
    """Every child the spec wants, in apply order (Services before the pods they front).

    KafkaTopics come first, so the topics exist when the pods start; they are wanted only
    when the cluster serves a Strimzi version (`strimzi_version`, found by discovery).
    """
    children: list[Manifest] = []
    if spec.kafka.topic_management == "Strimzi" and strimzi_version is not None:
        children += [
            strimzi.kafka_topic(spec, owner, role, strimzi_version) for role in TOPIC_ROLES
        ]
    for name in spec.components():
        children.append(workload.service(owner, name))
        children.append(workload.deployment(spec, owner, name))
    if keda.needs_trigger_authentication(spec):
        children.append(keda.trigger_authentication(spec, owner))
    children += [keda.scaled_object(spec, owner, name) for name in spec.autoscaled()]
    children += [
        vpa.vertical_pod_autoscaler(spec, owner, name) for name in spec.vertically_scaled()
    ]
    children += [monitoring.service_monitor(spec, owner, name) for name in spec.service_monitored()]
    if spec.monitoring.dashboard.enabled:
        children.append(dashboard.config_map(spec, owner))
    if spec.monitoring.alerts.enabled:
        children.append(alerts.prometheus_rule(spec, owner))
    return children
