"""ScalingDemos on the bed: the examples pointed at the bed, and probes of what the operator did."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tests.testbed.bed import Bed

GROUP, VERSION, PLURAL, KIND = "scalingdemo.dev", "v1alpha1", "scalingdemos", "ScalingDemo"


def adapted(document: dict[str, Any], bed: Bed) -> dict[str, Any]:
    """An example pointed at the bed's Kafka and Prometheus instead of the kind cluster's."""
    if document.get("kind") != KIND:
        return document
    spec = document["spec"]
    spec["kafka"]["bootstrapServers"] = bed.kafka_bootstrap
    prometheus = spec.get("monitoring", {}).get("prometheus")
    if prometheus is not None and bed.prometheus is not None:
        prometheus["serverAddress"] = bed.prometheus.url
    return document


def reconciled(status: dict[str, Any]) -> bool:
    """The operator has handled the current generation: status and conditions written."""
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
    return status.get("observedGeneration") == ready.get("observedGeneration") == status["at"]


def status_of(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    """The status, with the generation it should have observed under "at"."""
    body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return {**(body.get("status") or {}), "at": body["metadata"]["generation"]}


def gone(custom: client.CustomObjectsApi, namespace: str, name: str) -> bool:
    names = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    return all(item["metadata"]["name"] != name for item in names)
