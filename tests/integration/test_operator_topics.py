"""Topic reconciliation against the bed's real Kafka broker.

Every test uses its own topic names, since the broker is shared by the whole session. What the
module did is read back with a plain aiokafka admin client, not with the module itself. The
broker's metadata trails its controller by a moment, so read-backs are bounded polls (the bound
is a failure limit, never a timing assertion).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from scalingdemo_operator.api import Event
from scalingdemo_operator.kafka.admin import delete, reconcile
from scalingdemo_operator.kafka.model import (
    DesiredTopic,
    KafkaConnection,
    TopicsResult,
    TopicStatus,
    TopicsUnavailable,
)

from tests.support import eventually_async, kafka_admin, on_broker
from tests.testbed.bed import Bed


@pytest.fixture
def connection(kafka_bootstrap: str) -> KafkaConnection:
    return KafkaConnection(kafka_bootstrap, request_timeout_seconds=5, timeout_seconds=15)


@pytest.fixture
def name() -> Callable[[str], str]:
    """Topic names unique to this test."""
    run = uuid.uuid4().hex[:8]
    return lambda role: f"topics-{role}-{run}"


@pytest.fixture
async def broker(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """An independent admin client to check what the module did."""
    async with kafka_admin(kafka_bootstrap) as admin:
        yield admin


def about(event: Event) -> str:
    """The topic an event is about: its message starts with "topic <name>"."""
    return event.message.split()[1].rstrip(":")


def ready(result: TopicsResult) -> bool:
    """Every topic as the spec says: nothing refused, nothing failed."""
    return not (result.refused or result.failed)


async def existing(admin: AIOKafkaAdminClient, names: list[str]) -> set[str]:
    return set(names) & set(await admin.list_topics())


async def settled(admin: AIOKafkaAdminClient, topic: str, expected: dict[str, Any]) -> None:
    await eventually_async(
        lambda: on_broker(admin, topic), topic, accept=lambda seen: seen == expected
    )


async def test_creates_missing_topics_then_writes_nothing(
    connection: KafkaConnection, broker: AIOKafkaAdminClient, name: Callable[[str], str]
) -> None:
    messages = DesiredTopic(name("messages"), 6, 1, {"retention.ms": "3600000"})
    tasks = DesiredTopic(name("tasks"), 3, 1, {})

    result = await reconcile(connection, [messages, tasks])

    assert ready(result)
    assert result.topics == (TopicStatus(messages.name, 6, 1), TopicStatus(tasks.name, 3, 1))
    assert [(about(e), e.reason) for e in result.done] == [
        (messages.name, "TopicCreated"),
        (tasks.name, "TopicCreated"),
    ]
    await settled(
        broker,
        messages.name,
        {"partitions": 6, "replicas": 1, "config": {"retention.ms": "3600000"}},
    )
    await settled(broker, tasks.name, {"partitions": 3, "replicas": 1, "config": {}})

    again = await reconcile(connection, [messages, tasks])
    assert ready(again)
    assert not again.done
    assert again.topics == result.topics


async def test_raises_partitions_and_replaces_the_config(
    connection: KafkaConnection, broker: AIOKafkaAdminClient, name: Callable[[str], str]
) -> None:
    topic = name("grow")
    first = {"retention.ms": "3600000", "max.message.bytes": "2097152"}
    await reconcile(connection, [DesiredTopic(topic, 2, 1, first)])
    await settled(broker, topic, {"partitions": 2, "replicas": 1, "config": first})

    second = {"retention.ms": "7200000", "cleanup.policy": "compact"}
    result = await reconcile(connection, [DesiredTopic(topic, 5, 1, second)])

    assert ready(result)
    assert result.topics == (TopicStatus(topic, 5, 1),)
    assert [e.reason for e in result.done] == ["TopicPartitionsIncreased", "TopicConfigChanged"]
    assert "from 2 to 5" in result.done[0].message
    assert "max.message.bytes 2097152 -> (broker default)" in result.done[1].message
    await settled(broker, topic, {"partitions": 5, "replicas": 1, "config": second})


async def test_partition_decrease_is_refused_and_nothing_changes(
    connection: KafkaConnection, broker: AIOKafkaAdminClient, name: Callable[[str], str]
) -> None:
    topic = name("shrink")
    config = {"retention.ms": "3600000"}
    await reconcile(connection, [DesiredTopic(topic, 4, 1, config)])
    before = {"partitions": 4, "replicas": 1, "config": config}
    await settled(broker, topic, before)

    result = await reconcile(connection, [DesiredTopic(topic, 2, 1, config)])

    assert not ready(result)
    assert not result.done
    assert not result.failed
    (refusal,) = result.refused
    assert (about(refusal), refusal.reason) == (topic, "PartitionDecreaseRefused")
    assert "has 4 partitions" in refusal.message
    assert "asks for 2" in refusal.message
    assert result.topics == (TopicStatus(topic, 4, 1),)
    assert await on_broker(broker, topic) == before


async def test_broker_errors_are_reported_per_topic(
    connection: KafkaConnection, broker: AIOKafkaAdminClient, name: Callable[[str], str]
) -> None:
    good, too_replicated = name("good"), name("rf3")
    result = await reconcile(
        connection,
        [DesiredTopic(good, 1, 1, {}), DesiredTopic(too_replicated, 1, 3, {})],
    )
    assert [about(e) for e in result.done] == [good]
    (failure,) = result.failed
    assert (about(failure), failure.reason) == (too_replicated, "InvalidReplicationFactor")
    assert "replication factor of 3" in failure.message
    assert result.topics == (TopicStatus(good, 1, 1), TopicStatus(too_replicated, None, None))
    await settled(broker, good, {"partitions": 1, "replicas": 1, "config": {}})

    result = await reconcile(connection, [DesiredTopic(good, 1, 1, {"retention.ms": "soon"})])
    (failure,) = result.failed
    assert (about(failure), failure.reason) == (good, "InvalidConfiguration")
    assert "retention.ms" in failure.message
    assert await on_broker(broker, good) == {"partitions": 1, "replicas": 1, "config": {}}


async def test_reconciling_does_not_let_the_broker_auto_create_topics(
    connection: KafkaConnection, broker: AIOKafkaAdminClient, name: Callable[[str], str]
) -> None:
    """The broker auto-creates topics named in a Metadata request; reading them must not.

    A topic whose creation the broker refuses (more replicas than brokers) is read before and
    after: it must still not exist, while a name put in a Metadata request is auto-created.
    """
    refused, control = name("refused"), name("autocreated")
    result = await reconcile(connection, [DesiredTopic(refused, 1, 3, {})])
    assert [failure.reason for failure in result.failed] == ["InvalidReplicationFactor"]
    await broker.describe_topics([control])
    await eventually_async(
        broker.list_topics, "auto-creation", accept=lambda topics: control in topics
    )
    assert refused not in await broker.list_topics()


async def test_delete_removes_topics_and_is_idempotent(
    connection: KafkaConnection, broker: AIOKafkaAdminClient, name: Callable[[str], str]
) -> None:
    topics = [DesiredTopic(name("a"), 1, 1, {}), DesiredTopic(name("b"), 2, 1, {})]
    await reconcile(connection, topics)
    names = [topic.name for topic in topics]
    await eventually_async(
        lambda: existing(broker, names), "creation", accept=lambda seen: len(seen) == 2
    )

    deleted = await delete(connection, [*names, name("never-existed")])

    assert deleted.deleted == tuple(names)
    assert not deleted.failed
    assert [e.reason for e in deleted.done] == ["TopicDeleted", "TopicDeleted"]
    await eventually_async(
        lambda: existing(broker, names), "deletion", accept=lambda seen: not seen
    )
    assert (await delete(connection, names)).deleted == ()


async def test_sasl_against_a_listener_without_it_is_an_authentication_failure(
    kafka_bootstrap: str,
) -> None:
    connection = KafkaConnection(
        kafka_bootstrap, sasl_mechanism="PLAIN", sasl_username="demo", sasl_password="wrong"
    )
    with pytest.raises(TopicsUnavailable) as raised:
        await reconcile(connection, [DesiredTopic("any", 1, 1, {})])
    assert raised.value.reason == "AuthenticationFailed"
    assert kafka_bootstrap in raised.value.detail
    assert "wrong" not in str(raised.value)


async def test_broker_outage_is_reported_then_recovered_from(
    bed: Bed,
    connection: KafkaConnection,
    broker: AIOKafkaAdminClient,
    name: Callable[[str], str],
) -> None:
    if bed.kafka is None:
        pytest.skip("an existing broker cannot be stopped by the tests")
    topic = name("outage")
    await reconcile(connection, [DesiredTopic(topic, 1, 1, {})])
    await eventually_async(lambda: on_broker(broker, topic), "creation")

    await asyncio.to_thread(bed.kafka.stop)
    try:
        started = time.monotonic()
        with pytest.raises(TopicsUnavailable) as raised:
            await reconcile(connection, [DesiredTopic(topic, 3, 1, {})])
        assert time.monotonic() - started < connection.timeout_seconds + 5
        assert raised.value.reason == "BrokerUnreachable"
        assert connection.bootstrap_servers in raised.value.detail
    finally:
        await asyncio.to_thread(bed.kafka.start)

    result = await eventually_async(
        lambda: _reconcile_or_none(connection, [DesiredTopic(topic, 3, 1, {})]),
        "a reconcile after the broker came back",
        accept=lambda outcome: outcome is not None and ready(outcome),
    )
    assert result.topics == (TopicStatus(topic, 3, 1),)


async def _reconcile_or_none(connection: KafkaConnection, desired: list[DesiredTopic]) -> Any:
    """A broker that just started may not answer yet: that is a retry, not a failure."""
    try:
        return await reconcile(connection, desired)
    except TopicsUnavailable:
        return None


async def test_a_broker_that_never_answers_times_out_within_the_bound() -> None:
    """A listener that accepts and stays silent (a hung broker): the call must not hang."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    connection = KafkaConnection(f"{host}:{port}", request_timeout_seconds=0.5, timeout_seconds=2)
    try:
        started = time.monotonic()
        with pytest.raises(TopicsUnavailable) as raised:
            await reconcile(connection, [DesiredTopic("any", 1, 1, {})])
        assert time.monotonic() - started < connection.timeout_seconds + 5
    finally:
        server.close()
    assert raised.value.reason == "BrokerTimeout"
