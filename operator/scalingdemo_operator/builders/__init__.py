"""Pure functions from a spec to the manifests of every child; no I/O, no kopf.

`desired_children` is the one list the reconcile applies; every concern (workload, autoscaling,
monitoring, dashboard) adds its builders here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..api import Manifest, Owner
from . import autoscaling, dashboard, monitoring, topics, workload

if TYPE_CHECKING:
    from ..spec import ScalingDemoSpec


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
            topics.kafka_topic(spec, owner, role, strimzi_version) for role in topics.ROLES
        ]
    for name in spec.components():
        children.append(workload.service(owner, name))
        children.append(workload.deployment(spec, owner, name))
    if autoscaling.needs_trigger_authentication(spec):
        children.append(autoscaling.trigger_authentication(spec, owner))
    children += [
        autoscaling.scaled_object(spec, owner, name) for name in autoscaling.autoscaled(spec)
    ]
    children += [
        autoscaling.vertical_pod_autoscaler(spec, owner, name)
        for name in autoscaling.vertically_scaled(spec)
    ]
    children += [
        monitoring.service_monitor(spec, owner, name) for name in monitoring.service_monitored(spec)
    ]
    if spec.monitoring.dashboard.enabled:
        children.append(dashboard.config_map(spec, owner))
    return children
