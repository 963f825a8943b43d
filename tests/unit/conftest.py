"""Constants and small helpers the operator's unit tests share: one demo, its labels, specs."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from scalingdemo_operator.api import APPLIED_HASH_ANNOTATION, Owner
from scalingdemo_operator.spec import ScalingDemoSpec, parse

MINIMAL = {"image": "registry.example/workload:1", "kafka": {"bootstrapServers": "kafka:9092"}}


LABELS = {
    "app.kubernetes.io/name": "scalingdemo",
    "app.kubernetes.io/instance": "demo",
    "app.kubernetes.io/component": "worker",
    "app.kubernetes.io/part-of": "scalingdemo",
    "app.kubernetes.io/managed-by": "scalingdemo-operator",
}


SELECTOR = {key: LABELS[key] for key in list(LABELS)[:3]}


OWNER_REFERENCE = {
    "apiVersion": "scalingdemo.dev/v1alpha1",
    "kind": "ScalingDemo",
    "name": "demo",
    "uid": "1234",
    "controller": True,
    "blockOwnerDeletion": True,
}


SCRAPE_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": "8080",
    "prometheus.io/path": "/metrics",
}


OWNER = Owner(namespace="team", name="demo", uid="1234")


PROMETHEUS = "http://prometheus.monitoring.svc.cluster.local:9090"


BROKERS = "kafka.kafka.svc.cluster.local:9092"


SEED_TRIGGERS = [
    {"name": "taskLag", "kafkaLag": {"topic": "tasks", "lagThreshold": 5}},
    {"name": "queueDepth", "prometheus": {"preset": "queueDepth", "threshold": "20"}},
    {"name": "cpu", "cpu": {"value": 70}},
]


SEED_AUTOSCALING = {
    "enabled": True,
    "minReplicas": 1,
    "maxReplicas": 6,
    "fallback": {"replicas": 2},
    "behavior": {
        "scaleDown": {
            "stabilizationWindowSeconds": 60,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}],
        }
    },
    "triggers": SEED_TRIGGERS,
}
"""The seed's scaling (task lag, queue depth, CPU) in our spec, with its defects fixed."""


def worker_spec(worker: dict[str, Any], **extra: Any) -> ScalingDemoSpec:
    """A demo with the given worker section, a broker and a Prometheus to query."""
    return parse(
        {
            "image": "registry.example/workload:1",
            "kafka": {"bootstrapServers": BROKERS},
            "monitoring": {"prometheus": {"serverAddress": PROMETHEUS}},
            "worker": worker,
            **extra,
        }
    )


def child_metadata(name: str, component: str = "worker") -> dict[str, Any]:
    """The metadata every child of OWNER carries."""
    return {
        "name": name,
        "namespace": "team",
        "labels": {**LABELS, "app.kubernetes.io/component": component},
        "ownerReferences": [OWNER_REFERENCE],
    }


def unstamped(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without its applied-hash annotation (checked to be the only one)."""
    result = copy.deepcopy(manifest)
    annotations = result["metadata"].pop("annotations")
    assert set(annotations) == {APPLIED_HASH_ANNOTATION}
    return result


AUTH = {
    "sasl": {"mechanism": "SCRAM-SHA-512", "secretName": "kafka-user"},
    "tls": {"caSecretName": "kafka-ca"},
}


def targets(model: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every query of a dashboard model, rows included."""
    for panel in model["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                yield inner["title"], target


def model_of(manifest: dict[str, Any]) -> dict[str, Any]:
    (text,) = manifest["data"].values()
    return json.loads(text)
