"""Deployment and Service of each workload component.

Pods follow the restricted Pod Security profile: non-root, no privilege escalation, every
capability dropped, RuntimeDefault seccomp and a read-only root filesystem (with a writable
/tmp). Probes use the workload's /healthz and /readyz.
"""

from __future__ import annotations

from typing import Any

from scalingdemo_workload.contract import Paths

from ..api import Manifest, Owner
from ..spec import Component, ScalingDemoSpec
from . import env, monitoring
from .common import labels, metadata, selector_labels, stamp

CONTAINER = "workload"
RUN_AS = 10001
"""The workload image's numeric non-root user (Dockerfile.workload), so the kubelet can check it."""


def _resources(component: Component) -> dict[str, Any]:
    resources = component.resources
    result: dict[str, Any] = {}
    for section, values in (("requests", resources.requests), ("limits", resources.limits)):
        present = {key: value for key, value in values.model_dump().items() if value is not None}
        if present:
            result[section] = present
    return result


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": env.PORT_NAME},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def _container(spec: ScalingDemoSpec, owner: Owner, name: str) -> dict[str, Any]:
    component = spec.component(name)
    _, mounts = env.secret_volumes(spec)
    return {
        "name": CONTAINER,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "ports": [{"name": env.PORT_NAME, "containerPort": env.PORT, "protocol": "TCP"}],
        "env": env.environment(spec, owner, name),
        "resources": _resources(component),
        "readinessProbe": _probe(Paths.READINESS, period=5, failures=3),
        "livenessProbe": _probe(Paths.LIVENESS, period=10, failures=6),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *mounts],
    }


def _pod_metadata(spec: ScalingDemoSpec, owner: Owner, name: str) -> dict[str, Any]:
    annotations = monitoring.pod_annotations(spec)
    found: dict[str, Any] = {"labels": labels(owner, name)}
    if annotations:
        found["annotations"] = annotations
    return found


def deployment(spec: ScalingDemoSpec, owner: Owner, name: str) -> Manifest:
    """The component's Deployment; without spec.replicas while KEDA scales it."""
    component = spec.component(name)
    volumes, _ = env.secret_volumes(spec)
    deployment_spec: dict[str, Any] = {
        "revisionHistoryLimit": 3,
        "selector": {"matchLabels": selector_labels(owner, name)},
        "template": {
            "metadata": _pod_metadata(spec, owner, name),
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": RUN_AS,
                    "runAsGroup": RUN_AS,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [_container(spec, owner, name)],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}, *volumes],
            },
        },
    }
    if not component.autoscaling.enabled:
        deployment_spec = {"replicas": component.replicas, **deployment_spec}
    return stamp(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(owner, name, owner.child_name(name)),
            "spec": deployment_spec,
        }
    )


def service(owner: Owner, name: str) -> Manifest:
    """ClusterIP Service in front of the component (the API's endpoint, everyone's /metrics)."""
    return stamp(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(owner, name, owner.child_name(name)),
            "spec": {
                "type": "ClusterIP",
                "selector": selector_labels(owner, name),
                "ports": [
                    {
                        "name": env.PORT_NAME,
                        "port": env.PORT,
                        "targetPort": env.PORT_NAME,
                        "protocol": "TCP",
                    }
                ],
            },
        }
    )
