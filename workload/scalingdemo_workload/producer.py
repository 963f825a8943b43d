"""Producing accepted records to Kafka with bounded waits.

A 202 promises the record is durably in Kafka, so the producer uses acks=all with idempotence and
the handler waits for every acknowledgement. A request never waits longer than the produce
timeout: while Kafka is unreachable it answers 503 at once, and a send that stalls is cut off
with 503 too (the record may still land later; the client retries, which at-least-once allows).
"""

import asyncio
import functools
import logging
import math
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from .batch import BatchOutcome
from .batching import Delivery, enqueue_batches
from .config import Settings
from .connection import client_options
from .errors import ApiError
from .health import Flag, cancel_all, close_within, probe_loop, start_with_retry
from .metrics import Metrics
from .pacing_kafka import MetadataPacer
from .throttle import ThrottledLog
from .validation import MAX_RECORD_BYTES, Outgoing

log = logging.getLogger(__name__)

BATCHES_FROM = 64
"""Requests with at least this many records are handed over as ready-made batches
(`batching`); smaller ones record by record, merged with other requests' records."""

GUARANTEE: dict[str, Any] = {"acks": "all", "enable_idempotence": True}
"""What a 202 rests on: every replica in sync has the record, written once despite retries."""
BATCHING: dict[str, Any] = {"linger_ms": 0, "max_batch_size": 256 * 1024}
"""How records are gathered into produce requests (the benchmark's baselines use the same).

No linger: aiokafka keeps one produce request in flight per broker, and the records that arrive
meanwhile gather into the next one anyway; lingering only delayed that next request. Measured
under wrk with one record per request, back to back: 9,160 req/s without linger, 5,941 with 2 ms,
4,093 with 5 ms; on a busier machine 4,115 without and 3,869 with 2 ms."""


class Producer:
    """The process's single Kafka producer, started in the background and watched for readiness."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = Flag(metrics.kafka_ready.labels("producer").set)
        # Label lookups take a lock and a dict probe; resolve each topic's children once.
        self._produced = functools.cache(metrics.produced.labels)
        self._errors = functools.cache(metrics.producer_errors.labels)
        self._log_failure = ThrottledLog(log)

    def _create(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            **client_options(self._settings),
            **GUARANTEE,
            **BATCHING,
            max_request_size=MAX_RECORD_BYTES,
        )
        MetadataPacer(producer.client)
        return producer

    async def _run(self) -> None:
        producer = await start_with_retry("producer", self._create, AIOKafkaProducer.start)
        self._producer = producer
        client = producer.client
        await probe_loop(
            "producer", client.fetch_all_metadata, self.ready, self._settings.probe_interval_seconds
        )

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name="producer"))

    async def stop(self, deadline: float) -> None:
        """Stop probing, then flush what is buffered, within the grace period: a request still
        waiting was not answered 202, so a record cut off here was never promised."""
        await cancel_all(self._tasks)
        if self._producer is not None:
            await close_within(self._producer.stop, deadline, "producer")

    def _unavailable(self, message: str, extra: dict[str, Any] | None = None) -> ApiError:
        retry_after = str(math.ceil(self._settings.probe_interval_seconds))
        return ApiError(
            503, "kafka_unavailable", message, headers={"Retry-After": retry_after}, extra=extra
        )

    async def send_many(self, topic: str, records: list[Outgoing]) -> list[str]:
        """Produce `records` and wait for all acknowledgements; the ids of the accepted records.

        Records were validated and encoded before this call, so what fails here is Kafka's
        doing. A failure is answered with exactly what happened to each record (see
        `BatchOutcome`), never with a bare error while some records already landed.
        """
        producer = self._producer
        if producer is None or not self.ready.value:
            raise self._unavailable("Kafka is not reachable; retry later")
        timeout = self._settings.produce_timeout_seconds
        deliveries: list[Delivery | None] = [None] * len(records)
        try:
            async with asyncio.timeout(timeout):
                if len(records) >= BATCHES_FROM:
                    await enqueue_batches(producer, topic, records, deliveries)
                else:
                    for index, record in enumerate(records):
                        deliveries[index] = await producer.send(
                            topic, value=record.value, key=record.key
                        )
                # Awaiting in order costs less than gather's per-future callbacks; a batch's
                # futures resolve together anyway.
                for delivery in dict.fromkeys(deliveries):
                    assert delivery is not None
                    await delivery
        except (KafkaError, TimeoutError):
            pass
        else:
            self._produced(topic).inc(len(records))
            return [record.id for record in records]
        outcome = BatchOutcome.of(records, deliveries)
        self._produced(topic).inc(len(outcome.landed))
        self._errors(topic).inc(len(records) - len(outcome.landed))
        self._log_failure.warning(
            "producing %d records to %s: %s", len(records), topic, outcome.summary(timeout)
        )
        if outcome.rejected:
            raise ApiError(502, "kafka_rejected", outcome.summary(timeout), extra=outcome.body())
        raise self._unavailable(outcome.summary(timeout), outcome.body())
