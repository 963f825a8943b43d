"""The demo's two topics, as the Kafka admin API wants them or as Strimzi KafkaTopics.

Names come from the same `env.kafka_names` the workload's environment uses, so the topics the
operator creates are the ones the pods produce to and KEDA measures. The admin connection uses
the spec's auth section with credentials the caller read from the named Secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scalingdemo_workload.contract import Env

from ..api import KAFKA_TOPIC, Manifest, Owner
from ..topics import DesiredTopic, KafkaConnection
from . import env
from .common import metadata, stamp

if TYPE_CHECKING:
    from ..spec import ScalingDemoSpec

STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"
ROLES = {"messages": Env.MESSAGES_TOPIC, "tasks": Env.TASKS_TOPIC}
"""Topic role in the spec -> the workload variable carrying its name."""


def desired_topics(spec: ScalingDemoSpec, owner: Owner) -> dict[str, DesiredTopic]:
    """The demo's topics by role (messages, tasks) with the spec's size and config."""
    names = env.kafka_names(spec, owner)
    found = {}
    for role, variable in ROLES.items():
        topic = getattr(spec.kafka.topics, role)
        found[role] = DesiredTopic(
            names[variable], topic.partitions, topic.replication_factor, topic.config
        )
    return found


def secret_references(spec: ScalingDemoSpec) -> list[tuple[str, str]]:
    """(Secret name, key) pairs holding the admin connection's credentials, in a fixed order:
    SASL user name, SASL password, then the TLS CA (each only when the spec names it)."""
    auth = spec.kafka.auth
    found = []
    if auth and auth.sasl:
        found += [
            (auth.sasl.secret_name, auth.sasl.username_key),
            (auth.sasl.secret_name, auth.sasl.password_key),
        ]
    if auth and auth.tls and auth.tls.enabled and auth.tls.ca_secret_name:
        found.append((auth.tls.ca_secret_name, auth.tls.ca_key))
    return found


def connection(
    spec: ScalingDemoSpec, credentials: Mapping[tuple[str, str], str]
) -> KafkaConnection:
    """The admin connection the workload's own settings imply; `credentials` holds the values
    of `secret_references(spec)`, already decoded."""
    auth = spec.kafka.auth
    options: dict[str, Any] = {}
    if auth and auth.sasl:
        user, password = secret_references(spec)[:2]
        options |= {
            "sasl_mechanism": auth.sasl.mechanism,
            "sasl_username": credentials[user],
            "sasl_password": credentials[password],
        }
    if auth and auth.tls and auth.tls.enabled:
        options["tls"] = True
        if auth.tls.ca_secret_name:
            options["tls_ca_pem"] = credentials[(auth.tls.ca_secret_name, auth.tls.ca_key)]
    return KafkaConnection(spec.kafka.bootstrap_servers, **options)


def kafka_topic(spec: ScalingDemoSpec, owner: Owner, role: str, api_version: str) -> Manifest:
    """A Strimzi KafkaTopic for one role.

    With deletionPolicy Retain it carries no ownerReference, so deleting the demo leaves it, and
    Strimzi keeps the topic; with Delete the garbage collector removes it and Strimzi then
    deletes the topic. Kafka topic names may hold characters a Kubernetes name cannot, so the
    resource is named after the demo and `topicName` carries the real name.
    """
    topic = desired_topics(spec, owner)[role]
    meta = metadata(owner, "topics", owner.child_name(role))
    meta["labels"][STRIMZI_CLUSTER_LABEL] = spec.kafka.strimzi_cluster
    if spec.kafka.deletion_policy == "Retain":
        del meta["ownerReferences"]
    body: dict[str, Any] = {
        "topicName": topic.name,
        "partitions": topic.partitions,
        "replicas": topic.replication_factor,
    }
    if topic.config:
        body["config"] = dict(topic.config)
    return stamp(
        {
            "apiVersion": KAFKA_TOPIC.api_version(api_version),
            "kind": "KafkaTopic",
            "metadata": meta,
            "spec": body,
        }
    )
