"""Large requests are queued as ready-made batches, each record where `send` would put it."""

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from scalingdemo_workload.batching import enqueue_batches
from scalingdemo_workload.validation import Outgoing

pytestmark = pytest.mark.unit

PARTITIONS = {0, 1, 2}


class BatchingProducer:
    """The part of AIOKafkaProducer the batch path uses; remembers what it was handed."""

    def __init__(self, batch_size: int, available: set[int] = PARTITIONS) -> None:
        self._batch_size = batch_size
        self.client = SimpleNamespace(
            cluster=SimpleNamespace(available_partitions_for_topic=lambda topic: available)
        )
        self.sent: list[tuple[int, int, asyncio.Future[Any]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return PARTITIONS

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self._batch_size, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> Any:
        delivery = asyncio.get_running_loop().create_future()
        self.sent.append((partition, batch.record_count(), delivery))
        return delivery


def outgoing(count: int, key: bytes | None = None, size: int = 10) -> list[Outgoing]:
    return [Outgoing(f"id-{n}", key, b"x" * size) for n in range(count)]


async def test_keyless_records_of_a_request_share_one_batch():
    producer = BatchingProducer(batch_size=1 << 16)
    records = outgoing(100)
    deliveries: list[Any] = [None] * len(records)
    await enqueue_batches(producer, "t", records, deliveries)
    [(partition, count, delivery)] = producer.sent
    assert (partition in PARTITIONS, count) == (True, 100)
    assert all(each is delivery for each in deliveries)


async def test_keyed_records_go_to_their_keys_partitions():
    producer = BatchingProducer(batch_size=1 << 16)
    keys = [f"key-{n}".encode() for n in range(30)]
    records = [Outgoing(f"id-{n}", key, b"v") for n, key in enumerate(keys)]
    deliveries: list[Any] = [None] * len(records)
    await enqueue_batches(producer, "t", records, deliveries)
    by_future = {id(delivery): partition for partition, _, delivery in producer.sent}
    expected = [DefaultPartitioner()(key, sorted(PARTITIONS), list(PARTITIONS)) for key in keys]
    assert [by_future[id(delivery)] for delivery in deliveries] == expected


async def test_a_full_batch_is_handed_over_and_a_new_one_started():
    producer = BatchingProducer(batch_size=1024)
    records = outgoing(40, size=100)
    deliveries: list[Any] = [None] * len(records)
    await enqueue_batches(producer, "t", records, deliveries)
    counts = [count for _, count, _ in producer.sent]
    assert len(counts) > 1
    assert sum(counts) == 40
    assert len({partition for partition, _, _ in producer.sent}) == 1
    first = producer.sent[0][2]
    assert deliveries[: counts[0]] == [first] * counts[0]
    assert first not in deliveries[counts[0] :]


async def test_without_available_partitions_any_partition_serves():
    producer = BatchingProducer(batch_size=1 << 16, available=set())
    deliveries: list[Any] = [None] * 5
    await enqueue_batches(producer, "t", outgoing(5), deliveries)
    assert producer.sent[0][0] in PARTITIONS
