"""At-least-once consumption of one topic in one consumer group.

Offsets are committed only after the records before them were processed, so a crash replays
work instead of dropping it. A batch is worked off by a fixed number of lanes (one coroutine
each, not one per record, which keeps small records cheap); on stop the records not yet started
are skipped and only the contiguous processed prefix of each partition
is committed, which keeps the drain short without losing anything.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from .config import Settings
from .connection import client_options
from .health import start_with_retry
from .metrics import Metrics

log = logging.getLogger(__name__)

POLL_MS = 500
MAX_RECORDS = 500

Handler = Callable[[ConsumerRecord], Awaitable[None]]


def committable(
    batches: dict[TopicPartition, list[ConsumerRecord]], done: dict[TopicPartition, list[bool]]
) -> dict[TopicPartition, int]:
    """Offsets safe to commit: per partition, just past the last record of the processed prefix.

    A record processed after an unprocessed one is not committed; it will be seen again, which
    at-least-once allows, whereas committing past the gap would lose the unprocessed record.
    """
    offsets = {}
    for tp, records in batches.items():
        flags = done[tp]
        processed = flags.index(False) if False in flags else len(flags)
        if processed:
            offsets[tp] = records[processed - 1].offset + 1
    return offsets


class _JoinListener(ConsumerRebalanceListener):
    """Marks the worker as having joined its group once the first assignment arrives."""

    def __init__(self, worker: "TopicWorker") -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        log.info("%s: partitions revoked: %s", self._worker.group, sorted(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("%s: partitions assigned: %s", self._worker.group, sorted(assigned))
        self._worker.joined = True


class TopicWorker:
    """Consumes `topic` as a member of `group`, calling `handle` for each record."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        topic: str,
        group: str,
        handle: Handler,
        lanes: int,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self.topic = topic
        self.group = group
        self._handle = handle
        self._lanes = lanes
        self._consumed = metrics.consumed.labels(topic)
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self.joined = False

    def _create(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **client_options(self._settings),
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset=self._settings.offset_reset,
        )

    async def _start(self, consumer: AIOKafkaConsumer) -> None:
        consumer.subscribe([self.topic], listener=_JoinListener(self))
        await consumer.start()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consume-{self.topic}")

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def crashed(self) -> bool:
        return self._task is not None and self._task.done() and not self._stopping.is_set()

    async def _run(self) -> None:
        self._consumer = await start_with_retry(f"consumer {self.group}", self._create, self._start)
        while not self._stopping.is_set():
            batches = await self._consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
            if batches:
                await self._process(self._consumer, batches)

    async def _process(
        self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        done = {tp: [False] * len(records) for tp, records in batches.items()}
        queue = ((tp, i, r) for tp, records in batches.items() for i, r in enumerate(records))

        async def lane() -> None:
            for tp, index, record in queue:
                if self._stopping.is_set():
                    return
                await self._handle(record)
                done[tp][index] = True

        self._consumed.inc(sum(len(records) for records in batches.values()))
        await asyncio.gather(*(lane() for _ in range(self._lanes)))
        offsets = committable(batches, done)
        if offsets:
            try:
                await consumer.commit(offsets)
            except KafkaError as err:
                log.warning("%s: commit failed, records will be redelivered: %r", self.group, err)

    async def stop(self, grace_seconds: float) -> None:
        """Stop fetching, let in-flight records finish within the grace period, leave the group."""
        self._stopping.set()
        task = self._task
        if task is not None:
            if self._consumer is None:
                task.cancel()
            done, _ = await asyncio.wait({task}, timeout=grace_seconds)
            if not done:
                log.warning("%s: in-flight records outlived the grace period", self.group)
                task.cancel()
            [outcome] = await asyncio.gather(task, return_exceptions=True)
            if isinstance(outcome, Exception):
                log.error("%s: consumer loop failed: %r", self.group, outcome)
        if self._consumer is not None:
            await self._consumer.stop()
