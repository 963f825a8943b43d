"""Producing accepted records to Kafka with bounded waits.

A 202 promises the record is durably in Kafka, so the producer uses acks=all with idempotence and
the handler waits for every acknowledgement. A request never waits longer than the produce
timeout: while Kafka is unreachable it answers 503 at once, and a send that stalls is cut off
with 503 too (the record may still land later; the client retries, which at-least-once allows).
"""

import asyncio
import json
import logging
import math

from aiokafka import AIOKafkaProducer

from .config import Settings
from .connection import client_options
from .errors import ApiError
from .health import Flag, cancel_all, probe_loop, start_with_retry
from .metrics import Metrics
from .validation import Outgoing

log = logging.getLogger(__name__)


class Producer:
    """The process's single Kafka producer, started in the background and watched for readiness."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task] = []
        self.ready = Flag(metrics.kafka_ready.labels("producer").set)

    def _create(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **client_options(self._settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            max_batch_size=256 * 1024,
        )

    async def _run(self) -> None:
        self._producer = await start_with_retry("producer", self._create, AIOKafkaProducer.start)
        client = self._producer.client
        await probe_loop(
            "producer", client.fetch_all_metadata, self.ready, self._settings.probe_interval_seconds
        )

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name="producer"))

    async def stop(self) -> None:
        """Stop probing, then flush what is buffered so accepted records are not lost."""
        await cancel_all(self._tasks)
        if self._producer is not None:
            await self._producer.stop()

    def _unavailable(self, message: str) -> ApiError:
        retry_after = str(math.ceil(self._settings.probe_interval_seconds))
        return ApiError(503, "kafka_unavailable", message, headers={"Retry-After": retry_after})

    async def send_many(self, topic: str, records: list[Outgoing]) -> list[str]:
        """Produce `records` and wait for all acknowledgements; the ids of the accepted records."""
        producer = self._producer
        if producer is None or not self.ready.value:
            raise self._unavailable("Kafka is not reachable; retry later")
        timeout = self._settings.produce_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                pending = [
                    await producer.send(
                        topic,
                        value=json.dumps(record.value, separators=(",", ":")).encode(),
                        key=None if record.key is None else record.key.encode(),
                    )
                    for record in records
                ]
                # Awaiting in order costs less than gather's per-future callbacks; a batch's
                # futures resolve together anyway.
                for delivery in pending:
                    await delivery
        except Exception as err:
            self._metrics.producer_errors.labels(topic).inc(len(records))
            log.warning("producing %d records to %s failed: %r", len(records), topic, err)
            raise self._unavailable(f"Kafka did not acknowledge within {timeout}s") from None
        self._metrics.produced.labels(topic).inc(len(records))
        return [record.id for record in records]
