"""KEDA in the bed scales a Deployment on real Kafka lag through the real HPA controller.

This is the bed's own proof that the aggregation layer, KEDA's operator and
adapter and the controller manager's HPA loop work together; the operator's
end-to-end scaling tests build on it.
"""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client

from tests.support import (
    PARTITIONS,
    SCALE_TIMEOUT,
    deployment,
    drain_topic,
    eventually,
    fill_topic,
)

LAG_THRESHOLD = 10


def kafka_scaled_object(bootstrap: str, topic: str, group: str) -> dict:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "consumer"},
        "spec": {
            "scaleTargetRef": {"name": "consumer"},
            "minReplicaCount": 1,
            "maxReplicaCount": 10,
            "pollingInterval": 1,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleUp": {"stabilizationWindowSeconds": 0},
                        "scaleDown": {"stabilizationWindowSeconds": 0},
                    }
                }
            },
            "triggers": [
                {
                    "type": "kafka",
                    "metadata": {
                        "bootstrapServers": bootstrap,
                        "consumerGroup": group,
                        "topic": topic,
                        "lagThreshold": str(LAG_THRESHOLD),
                        "offsetResetPolicy": "earliest",
                    },
                }
            ],
        },
    }


def replicas(apps: client.AppsV1Api, namespace: str) -> int:
    return apps.read_namespaced_deployment_scale("consumer", namespace).spec.replicas


@pytest.mark.usefixtures("keda")
async def test_keda_scales_on_kafka_lag_up_to_partitions_and_back(
    kube_api: client.ApiClient, namespace: str, kafka_bootstrap: str
) -> None:
    topic, group = f"keda-{uuid.uuid4().hex[:8]}", f"keda-group-{uuid.uuid4().hex[:8]}"
    await fill_topic(kafka_bootstrap, topic)
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, deployment("consumer", 1))
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(
        "keda.sh",
        "v1alpha1",
        namespace,
        "scaledobjects",
        kafka_scaled_object(kafka_bootstrap, topic, group),
    )

    def scaled_object_ready() -> bool:
        status = custom.get_namespaced_custom_object(
            "keda.sh", "v1alpha1", namespace, "scaledobjects", "consumer"
        ).get("status", {})
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        return conditions.get("Ready") == "True" and conditions.get("Active") == "True"

    eventually(
        scaled_object_ready, "KEDA to report the ScaledObject Ready and Active", SCALE_TIMEOUT
    )
    # Without allowIdleConsumers KEDA caps the replicas at the partition count,
    # although lag / threshold asks for more.
    eventually(
        lambda: replicas(apps, namespace) == PARTITIONS,
        f"the HPA to scale to {PARTITIONS} replicas",
        SCALE_TIMEOUT,
    )

    await drain_topic(kafka_bootstrap, topic, group)
    eventually(lambda: replicas(apps, namespace) == 1, "the HPA to scale back to 1", SCALE_TIMEOUT)
