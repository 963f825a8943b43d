"""Topics from the spec: admin-API topics and connection, Strimzi KafkaTopics, TopicsReady."""

from __future__ import annotations

import pytest
from scalingdemo_operator.api import APPLIED_HASH_ANNOTATION, Event
from scalingdemo_operator.assess.conditions import strimzi_topics_condition, topics_condition
from scalingdemo_operator.builders import desired_children
from scalingdemo_operator.builders.strimzi import kafka_topic
from scalingdemo_operator.kafka.model import (
    DesiredTopic,
    TopicsResult,
    TopicStatus,
    connection,
    desired_topics,
)
from scalingdemo_operator.spec import SpecError, parse

from tests.unit.conftest import OWNER

pytestmark = pytest.mark.unit

IMAGE = "registry.example/workload:1"


def spec_with(**kafka: object):
    return parse({"image": IMAGE, "kafka": {"bootstrapServers": "kafka:9092", **kafka}})


def test_topics_default_to_names_unique_per_demo_with_the_spec_size_and_config() -> None:
    spec = spec_with(
        topics={"tasks": {"name": "app-tasks", "partitions": 4, "config": {"retention.ms": "1"}}}
    )
    assert desired_topics(spec, OWNER) == {
        "messages": DesiredTopic("team-demo-messages", 6, 1, {}),
        "tasks": DesiredTopic("app-tasks", 4, 1, {"retention.ms": "1"}),
    }


def test_the_admin_connection_uses_the_workload_auth_with_values_from_secrets() -> None:
    spec = spec_with(
        auth={
            "sasl": {"mechanism": "SCRAM-SHA-512", "secretName": "creds", "usernameKey": "user"},
            "tls": {"caSecretName": "ca"},
        }
    )
    references = spec.kafka.secret_references()
    assert references == [("creds", "user"), ("creds", "password"), ("ca", "ca.crt")]
    values = dict(zip(references, ["alice", "secret", "-----PEM-----"], strict=True))
    built = connection(spec, values)
    assert (built.security_protocol, built.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (built.sasl_username, built.sasl_password, built.tls_ca_pem) == (
        "alice",
        "secret",
        "-----PEM-----",
    )
    assert "secret" not in repr(built)


def test_plaintext_needs_no_secret() -> None:
    spec = spec_with()
    assert spec.kafka.secret_references() == []
    assert connection(spec, {}).security_protocol == "PLAINTEXT"


def test_strimzi_needs_a_cluster_name() -> None:
    with pytest.raises(SpecError, match="strimziCluster is required"):
        spec_with(topicManagement="Strimzi")


@pytest.mark.parametrize(("policy", "owned"), [("Retain", False), ("Delete", True)])
def test_kafka_topics_are_owned_only_when_the_demo_deletes_its_topics(
    policy: str, owned: bool
) -> None:
    spec = spec_with(
        topicManagement="Strimzi",
        strimziCluster="my-cluster",
        deletionPolicy=policy,
        topics={"tasks": {"name": "app_tasks", "partitions": 4, "config": {"retention.ms": "1"}}},
    )
    topic = kafka_topic(spec, OWNER, "tasks", "v1")
    assert topic["apiVersion"] == "kafka.strimzi.io/v1"
    assert topic["metadata"]["name"] == "demo-tasks"
    assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "my-cluster"
    assert ("ownerReferences" in topic["metadata"]) is owned
    assert APPLIED_HASH_ANNOTATION in topic["metadata"]["annotations"]
    assert topic["spec"] == {
        "topicName": "app_tasks",
        "partitions": 4,
        "replicas": 1,
        "config": {"retention.ms": "1"},
    }


def test_kafka_topics_are_children_only_when_strimzi_is_served() -> None:
    spec = spec_with(topicManagement="Strimzi", strimziCluster="c")
    kinds = [child["kind"] for child in desired_children(spec, OWNER, "v1beta2")]
    assert kinds[:2] == ["KafkaTopic", "KafkaTopic"]
    assert "KafkaTopic" not in [child["kind"] for child in desired_children(spec, OWNER)]
    operator_managed = desired_children(spec_with(), OWNER, "v1")
    assert "KafkaTopic" not in [child["kind"] for child in operator_managed]


def test_topics_ready_lists_sizes_or_the_first_problem() -> None:
    sizes = (TopicStatus("a", 4, 1), TopicStatus("b", 2, 3))
    ready = topics_condition(TopicsResult(sizes))
    assert (ready.status, ready.reason) == ("True", "TopicsReconciled")
    assert "b (2 partitions, replication factor 3)" in ready.message
    refused = Event("Warning", "PartitionDecreaseRefused", "a keeps 4")
    failed = Event("Warning", "InvalidConfiguration", "b: bad value")
    broken = topics_condition(TopicsResult(sizes, refused=(refused,), failed=(failed,)))
    assert (broken.status, broken.reason) == ("False", "PartitionDecreaseRefused")
    assert broken.message == "a keeps 4; b: bad value"


def _kafka_topic(name: str, status: str | None, message: str = "") -> dict:
    conditions = [] if status is None else [{"type": "Ready", "status": status, "message": message}]
    return {"kind": "KafkaTopic", "metadata": {"name": name}, "status": {"conditions": conditions}}


def test_strimzi_verdicts_become_topics_ready() -> None:
    wanted = ["d-messages", "d-tasks"]
    waiting = strimzi_topics_condition(
        wanted, [_kafka_topic("d-messages", "True"), _kafka_topic("d-tasks", None)], failures=[]
    )
    assert (waiting.status, waiting.reason) == ("Unknown", "WaitingForStrimzi")
    assert "d-tasks" in waiting.message
    refused = strimzi_topics_condition(
        wanted, [_kafka_topic("d-tasks", "False", "partitions cannot be decreased")], failures=[]
    )
    assert (refused.status, refused.reason) == ("False", "KafkaTopicNotReady")
    assert "d-tasks: partitions cannot be decreased" in refused.message
    ready = strimzi_topics_condition(
        wanted, [_kafka_topic(name, "True") for name in wanted], failures=[]
    )
    assert (ready.status, ready.reason) == ("True", "KafkaTopicsReady")
    failed = strimzi_topics_condition(wanted, [], failures=["KafkaTopic d-tasks: invalid"])
    assert (failed.status, failed.reason) == ("False", "ApplyFailed")
