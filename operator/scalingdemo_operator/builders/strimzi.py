"""The demo's two topics as Strimzi KafkaTopics (spec.kafka.topicManagement Strimzi).

Names come from the same `spec.kafka_names` the workload's environment uses, so the topics
Strimzi creates are the ones the pods produce to and KEDA measures.
"""

from __future__ import annotations

from typing import Any

from ..api import KAFKA_TOPIC, Manifest, Owner
from ..spec import ScalingDemoSpec
from .common import metadata, stamp

STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"


def kafka_topic(spec: ScalingDemoSpec, owner: Owner, role: str, api_version: str) -> Manifest:
    """A Strimzi KafkaTopic for one role.

    With deletionPolicy Retain it carries no ownerReference, so deleting the demo leaves it, and
    Strimzi keeps the topic; with Delete the garbage collector removes it and Strimzi then
    deletes the topic. Kafka topic names may hold characters a Kubernetes name cannot, so the
    resource is named after the demo and `topicName` carries the real name.
    """
    topic = getattr(spec.kafka.topics, role)
    meta = metadata(owner, "topics", owner.child_name(role))
    meta["labels"][STRIMZI_CLUSTER_LABEL] = spec.kafka.strimzi_cluster
    if spec.kafka.deletion_policy == "Retain":
        del meta["ownerReferences"]
    body: dict[str, Any] = {
        "topicName": spec.kafka_names(owner).topics[role],
        "partitions": topic.partitions,
        "replicas": topic.replication_factor,
    }
    if topic.config:
        body["config"] = dict(topic.config)
    return stamp(
        {
            "apiVersion": KAFKA_TOPIC.api_version(api_version),
            "kind": KAFKA_TOPIC.kind,
            "metadata": meta,
            "spec": body,
        }
    )
