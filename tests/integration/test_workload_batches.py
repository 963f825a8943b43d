"""A batch whose middle record Kafka refuses: the client learns exactly which records landed.

The topic's `max.message.bytes` is set below one record of the batch, and keys put each record on
its own partition, so Kafka itself accepts records 0 and 2 and refuses record 1. Before, the client
got a bare 503 while records 0 and 2 were already on the topic.
"""

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.admin import NewTopic
from aiokafka.partitioner import murmur2
from scalingdemo_workload.app import create_app
from scalingdemo_workload.contract import Metric, Role
from scalingdemo_workload.keys import METRICS

from tests.support import Wiring, kafka_admin
from tests.workload_support import fresh_topics, read_topic, until_ready

PARTITIONS = 3
TOPIC_MAX_MESSAGE_BYTES = 2048


def key_for(partition: int) -> str:
    """A key the default partitioner sends to `partition`."""
    return next(
        key
        for n in range(1000)
        if (murmur2((key := f"key-{n}").encode()) & 0x7FFFFFFF) % PARTITIONS == partition
    )


@pytest.fixture
async def small_record_topic(kafka_bootstrap: str) -> AsyncIterator[Wiring]:
    async with fresh_topics(kafka_bootstrap) as wiring:
        limited = f"{wiring.messages_topic}-limited"
        config = {"max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES)}
        async with kafka_admin(kafka_bootstrap) as admin:
            await admin.create_topics([NewTopic(limited, PARTITIONS, 1, topic_configs=config)])
            yield Wiring(kafka_bootstrap, limited, wiring.tasks_topic, wiring.suffix)
            await admin.delete_topics([limited])


async def test_a_record_refused_mid_batch_is_reported_with_what_landed(small_record_topic: Wiring):
    batch = [
        {"content": "first", "key": key_for(0)},
        {"content": "x" * (TOPIC_MAX_MESSAGE_BYTES * 2), "key": key_for(1)},
        {"content": "third", "key": key_for(2)},
    ]
    settings = small_record_topic.settings(Role.API)
    async with TestClient(TestServer(create_app(settings))) as client:
        await until_ready(client)
        response = await client.post("/messages", json={"messages": batch})
        body = await response.json()
        registry = client.server.app[METRICS].registry
        labels = {"topic": small_record_topic.messages_topic}
        produced = registry.get_sample_value(Metric.RECORDS_PRODUCED, labels)
        errors = registry.get_sample_value(Metric.PRODUCER_ERRORS, labels)
    assert response.status == 502, body
    assert body["error"]["code"] == "kafka_rejected"
    [failed] = body["failed"]
    assert (failed["index"], failed["retriable"]) == (1, False)
    assert body["unconfirmed"] == []
    assert body["accepted"] == 2
    on_topic = await read_topic(small_record_topic.bootstrap, small_record_topic.messages_topic, 2)
    assert {json.loads(record.value)["id"] for record in on_topic} == set(body["ids"])
    assert failed["id"] not in body["ids"]
    assert (produced, errors) == (2, 1)
