"""The operator keeps a demo's topics on the bed's real broker: create, grow, configure, refuse
a decrease, delete with deletionPolicy Delete, and report an unreachable broker until it is back.

The operator runs as a process like everywhere else; what it did on the broker is read back
with an independent admin client. Broker outages stop the session's shared broker, always
restarted before the test ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Cluster, demo
from tests.operator_harness import OperatorProcess
from tests.support import eventually, kafka_admin, on_broker
from tests.testbed.bed import Bed

DELETE_ATTEMPTS = 2
"""Keeps the give-up path short: one retry after the handler's first 10 s backoff."""
RECOVERY_SECONDS = 120
"""Bound for the handler's retries (10, 20, 40 s backoff) to meet the restarted broker."""
FINALIZER = "scalingdemo.dev/finalizer"


@pytest.fixture
def operator(bed: Bed, crd: None, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        bed.kubeconfig,
        [namespace],
        tmp_path / "operator.log",
        extra_arguments=("--topic-delete-attempts", str(DELETE_ATTEMPTS)),
    )
    process.start()
    yield process
    process.stop()


def topic_demo(name: str, bootstrap: str, **kafka: Any) -> dict[str, Any]:
    return demo(name, kafka={"bootstrapServers": bootstrap, **kafka})


def on_the_broker(bootstrap: str, topic: str) -> dict[str, Any] | None:
    """Partitions, replicas and per-topic config of a topic, or None when it does not exist."""

    async def read() -> dict[str, Any] | None:
        async with kafka_admin(bootstrap) as admin:
            return await on_broker(admin, topic)

    return asyncio.run(read())


def listed_topics(cluster: Cluster, name: str) -> dict[str, dict[str, Any]]:
    return {item["role"]: item for item in cluster.get(name).get("status", {}).get("topics", [])}


def reasons(cluster: Cluster, name: str) -> list[tuple[str, str]]:
    return [(kind, reason) for kind, reason, _ in cluster.events(name)]


def test_topics_are_created_grown_configured_and_never_shrunk(
    cluster: Cluster, operator: OperatorProcess, kafka_bootstrap: str
) -> None:
    tasks = f"{cluster.namespace}-shop-tasks"
    topics = {
        "messages": {"partitions": 2},
        "tasks": {"partitions": 3, "config": {"retention.ms": "3600000"}},
    }
    cluster.create(topic_demo("shop", kafka_bootstrap, topics=topics))
    eventually(lambda: cluster.converged("shop"), "shop to become Ready with its topics")
    assert cluster.condition("shop", "TopicsReady")["reason"] == "TopicsReconciled"
    assert listed_topics(cluster, "shop") == {
        "messages": {
            "role": "messages",
            "name": f"{cluster.namespace}-shop-messages",
            "partitions": 2,
            "replicationFactor": 1,
        },
        "tasks": {"role": "tasks", "name": tasks, "partitions": 3, "replicationFactor": 1},
    }
    assert on_the_broker(kafka_bootstrap, tasks) == {
        "partitions": 3,
        "replicas": 1,
        "config": {"retention.ms": "3600000"},
    }
    eventually(
        lambda: reasons(cluster, "shop").count(("Normal", "TopicCreated")) == 2,
        "a TopicCreated event per topic",
    )

    cluster.patch(
        "shop",
        {"kafka": {"topics": {"tasks": {"partitions": 5, "config": {"retention.ms": "7200000"}}}}},
    )
    eventually(
        lambda: on_the_broker(kafka_bootstrap, tasks),
        "the broker to show 5 partitions and the new retention",
        accept=lambda seen: (
            seen == {"partitions": 5, "replicas": 1, "config": {"retention.ms": "7200000"}}
        ),
    )
    eventually(
        lambda: listed_topics(cluster, "shop")["tasks"]["partitions"] == 5,
        "status.topics to show the 5 partitions",
    )
    found = reasons(cluster, "shop")
    assert ("Normal", "TopicPartitionsIncreased") in found
    assert ("Normal", "TopicConfigChanged") in found

    cluster.patch("shop", {"kafka": {"topics": {"tasks": {"partitions": 2}}}})
    refused = eventually(
        lambda: cluster.condition("shop", "TopicsReady"),
        "TopicsReady to refuse the decrease",
        accept=lambda condition: condition.get("reason") == "PartitionDecreaseRefused",
    )
    assert refused["status"] == "False"
    assert "has 5 partitions and the spec asks for 2" in refused["message"]
    assert cluster.condition("shop")["reason"] == "PartitionDecreaseRefused"
    eventually(
        lambda: ("Warning", "PartitionDecreaseRefused") in reasons(cluster, "shop"),
        "a Warning event about the refused decrease",
    )
    assert on_the_broker(kafka_bootstrap, tasks)["partitions"] == 5
    assert listed_topics(cluster, "shop")["tasks"]["partitions"] == 5


def test_deletion_policy_delete_removes_the_topics_and_retain_keeps_them(
    cluster: Cluster, operator: OperatorProcess, kafka_bootstrap: str
) -> None:
    cluster.create(topic_demo("gone", kafka_bootstrap, deletionPolicy="Delete"))
    cluster.create(topic_demo("kept", kafka_bootstrap))
    for name in ("gone", "kept"):
        eventually(lambda name=name: cluster.converged(name), f"{name} to become Ready")
    eventually(
        lambda: FINALIZER in cluster.get("gone")["metadata"].get("finalizers", []),
        "the Delete demo to carry the finalizer",
    )
    assert FINALIZER not in cluster.get("kept")["metadata"].get("finalizers", [])

    for name in ("gone", "kept"):
        cluster.delete(name)
    for name in ("gone", "kept"):
        eventually(lambda name=name: not _exists(cluster, name), f"{name} to be deleted")
    for role in ("messages", "tasks"):
        assert on_the_broker(kafka_bootstrap, f"{cluster.namespace}-gone-{role}") is None
        assert on_the_broker(kafka_bootstrap, f"{cluster.namespace}-kept-{role}") is not None
    assert reasons(cluster, "gone").count(("Normal", "TopicDeleted")) == 2


def _exists(cluster: Cluster, name: str) -> bool:
    return any(
        item["metadata"]["name"] == name
        for item in cluster.custom.list_namespaced_custom_object(
            "scalingdemo.dev", "v1alpha1", cluster.namespace, "scalingdemos"
        )["items"]
    )


def test_an_unreachable_broker_is_reported_and_recovered_from_by_itself(
    cluster: Cluster, operator: OperatorProcess, kafka_bootstrap: str, bed: Bed
) -> None:
    cluster.create(topic_demo("shop", kafka_bootstrap))
    eventually(lambda: cluster.converged("shop"), "shop to become Ready")

    bed.kafka.stop()
    try:
        cluster.patch("shop", {"kafka": {"topics": {"tasks": {"partitions": 8}}}})
        down = eventually(
            lambda: cluster.condition("shop", "TopicsReady"),
            "TopicsReady to report the broker",
            accept=lambda condition: condition.get("status") == "False",
        )
        assert down["reason"] == "BrokerUnreachable"
        assert kafka_bootstrap in down["message"]
        assert cluster.condition("shop")["status"] == "False"
        eventually(
            lambda: ("Warning", "BrokerUnreachable") in reasons(cluster, "shop"),
            "a Warning event naming the broker problem",
        )
    finally:
        bed.kafka.start()

    eventually(
        lambda: listed_topics(cluster, "shop").get("tasks", {}).get("partitions") == 8,
        "the operator to retry on its own and grow the topic once the broker is back",
        RECOVERY_SECONDS,
    )
    eventually(lambda: cluster.converged("shop"), "shop to be Ready again")


def test_an_outage_first_seen_through_a_child_event_is_retried_on_the_backoff(
    cluster: Cluster, kafka_bootstrap: str, bed: Bed, crd: None, tmp_path: Path
) -> None:
    """The outage is noticed by a reconcile that a deleted child started, and nothing else
    happens afterwards: no spec change, no periodic resync. Only the reconciler's own retry
    can find the broker back and set TopicsReady again."""
    operator = OperatorProcess(
        bed.kubeconfig,
        [cluster.namespace],
        tmp_path / "operator.log",
        resync_seconds=0,
        extra_arguments=("--retry-seconds", "1", "--max-retry-seconds", "4"),
    )
    operator.start()
    try:
        cluster.create(topic_demo("shop", kafka_bootstrap))
        eventually(lambda: cluster.converged("shop"), "shop to become Ready")

        bed.kafka.stop()
        try:
            cluster.core.delete_namespaced_service("shop-api", cluster.namespace)
            down = eventually(
                lambda: cluster.condition("shop", "TopicsReady"),
                "the reconcile the deleted Service started to report the broker",
                accept=lambda condition: condition.get("status") == "False",
            )
            assert down["reason"] == "BrokerUnreachable"
            eventually(lambda: "shop-api" in cluster.services(), "the Service to be back")
        finally:
            bed.kafka.start()

        eventually(
            lambda: cluster.condition("shop", "TopicsReady").get("status") == "True",
            "a retry on the backoff to find the broker back, with no other trigger",
            RECOVERY_SECONDS,
        )
        eventually(lambda: cluster.converged("shop"), "shop to be Ready again")
    finally:
        operator.stop()


def test_deletion_is_not_blocked_forever_by_a_broker_that_is_gone(
    cluster: Cluster, operator: OperatorProcess, kafka_bootstrap: str, bed: Bed
) -> None:
    cluster.create(topic_demo("stuck", kafka_bootstrap, deletionPolicy="Delete"))
    eventually(lambda: cluster.converged("stuck"), "stuck to become Ready")

    bed.kafka.stop()
    try:
        cluster.delete("stuck")
        eventually(
            lambda: not _exists(cluster, "stuck"),
            f"the finalizer to let go after {DELETE_ATTEMPTS} attempts",
            RECOVERY_SECONDS,
        )
        (message,) = [
            text
            for kind, reason, text in cluster.events("stuck")
            if (kind, reason) == ("Warning", "TopicsNotDeleted")
        ]
        assert f"after {DELETE_ATTEMPTS} attempts" in message
        assert f"{cluster.namespace}-stuck-tasks" in message
    finally:
        bed.kafka.start()
    assert on_the_broker(kafka_bootstrap, f"{cluster.namespace}-stuck-tasks") is not None


STRIMZI = ("kafka.strimzi.io", "v1")


def kafka_topics(cluster: Cluster) -> dict[str, dict[str, Any]]:
    listing = cluster.custom.list_namespaced_custom_object(
        *STRIMZI, cluster.namespace, "kafkatopics"
    )
    return {item["metadata"]["name"]: item for item in listing["items"]}


def strimzi_says_ready(cluster: Cluster, name: str) -> None:
    """Write the Ready verdict into a KafkaTopic's status, as Strimzi's topic operator does."""
    status = {"conditions": [{"type": "Ready", "status": "True", "reason": "", "message": ""}]}
    cluster.custom.patch_namespaced_custom_object_status(
        *STRIMZI, cluster.namespace, "kafkatopics", name, {"status": status}
    )


def test_strimzi_management_writes_kafka_topics_that_follow_the_deletion_policy(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    """The real upstream KafkaTopic CRD validates what is written; no Strimzi operator runs
    in the bed, so its verdict is written into the status by the test."""
    strimzi = {"topicManagement": "Strimzi", "strimziCluster": "demo-cluster"}
    topics = {"tasks": {"name": "app_tasks", "partitions": 4, "config": {"retention.ms": "60000"}}}
    cluster.create(topic_demo("kept", "kafka:9092", topics=topics, **strimzi))
    waiting = eventually(
        lambda: cluster.condition("kept", "TopicsReady"),
        "TopicsReady to wait for Strimzi",
        accept=lambda condition: condition.get("reason") == "WaitingForStrimzi",
    )
    assert waiting["status"] == "Unknown"
    written = kafka_topics(cluster)
    assert sorted(written) == ["kept-messages", "kept-tasks"]
    tasks = written["kept-tasks"]
    assert tasks["metadata"]["labels"]["strimzi.io/cluster"] == "demo-cluster"
    assert "ownerReferences" not in tasks["metadata"]
    assert tasks["spec"] == {
        "topicName": "app_tasks",
        "partitions": 4,
        "replicas": 1,
        "config": {"retention.ms": "60000"},
    }
    for name in written:
        strimzi_says_ready(cluster, name)
    eventually(lambda: cluster.converged("kept"), "kept to be Ready once Strimzi says so")
    assert "topics" not in cluster.get("kept").get("status", {})

    cluster.create(topic_demo("gone", "kafka:9092", deletionPolicy="Delete", **strimzi))
    eventually(lambda: "gone-tasks" in kafka_topics(cluster), "gone's KafkaTopics")
    (reference,) = kafka_topics(cluster)["gone-tasks"]["metadata"]["ownerReferences"]
    assert reference["name"] == "gone"

    for name in ("kept", "gone"):
        cluster.delete(name)
    eventually(
        lambda: sorted(kafka_topics(cluster)),
        "the garbage collector to take only the Delete demo's KafkaTopics",
        accept=lambda names: names == ["kept-messages", "kept-tasks"],
    )
