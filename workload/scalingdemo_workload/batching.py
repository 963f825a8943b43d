"""Handing the records of a large request to the producer as ready-made batches.

aiokafka's `send` spends several microseconds of Python on every record (a metadata check, the
partitioner, a future per record); for 1000-record requests that was most of the api's time.
A batch builder takes a record for a fraction of that, and one future covers the whole batch.

Records go where `send` would put them: a keyed record to its key's partition (the default
partitioner's murmur2), so a key keeps its order; the keyless records of one request together
to one available partition chosen at random, as Kafka's sticky partitioner does.

Only large requests take this path: aiokafka queues one such batch per partition at a time, so
concurrent small requests are cheaper through `send`, which merges their records into one
growing batch per partition.
"""

import asyncio
import random
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from .validation import Outgoing

Delivery = asyncio.Future[Any]

PARTITIONER = DefaultPartitioner()


async def enqueue_batches(
    producer: AIOKafkaProducer,
    topic: str,
    records: list[Outgoing],
    deliveries: list[Delivery | None],
) -> None:
    """Queue `records` in batches; `deliveries[i]` becomes the future of record i's batch.

    `deliveries` is filled as batches are queued, so after a failure part-way it tells which
    records left and which never did.
    """
    partitions = sorted(await producer.partitions_for(topic))
    available = list(producer.client.cluster.available_partitions_for_topic(topic) or ())
    keyless = random.choice(available or partitions)
    filling: dict[int, tuple[BatchBuilder, list[int]]] = {}
    for index, record in enumerate(records):
        key = record.key
        partition = keyless if key is None else PARTITIONER(key, partitions, available)
        batch = filling.get(partition)
        if batch is not None and batch[0].append(key=key, value=record.value, timestamp=None):
            batch[1].append(index)
            continue
        if batch is not None:
            await _submit(producer, topic, partition, batch, deliveries)
        builder = producer.create_batch()
        # The first record always fits: a builder takes one record beyond its size.
        builder.append(key=key, value=record.value, timestamp=None)
        filling[partition] = (builder, [index])
    for partition, batch in filling.items():
        await _submit(producer, topic, partition, batch, deliveries)


async def _submit(
    producer: AIOKafkaProducer,
    topic: str,
    partition: int,
    batch: tuple[BatchBuilder, list[int]],
    deliveries: list[Delivery | None],
) -> None:
    builder, members = batch
    delivery = await producer.send_batch(builder, topic, partition=partition)
    for index in members:
        deliveries[index] = delivery
