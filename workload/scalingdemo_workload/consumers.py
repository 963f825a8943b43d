"""At-least-once consumption of one topic in one consumer group.

Offsets are committed only after the records before them were processed, so a crash replays
work instead of dropping it. A fetch is worked off by a fixed number of lanes (one coroutine
each, not one per record, which keeps small records cheap).

Three things keep redelivery down to the records actually in flight:

- while a fetch is worked off, its partitions are paused and the consumer keeps polling, so a
  fetch of long tasks never outlasts the group's max poll interval (which would make Kafka
  hand the partitions to another member and redo the whole fetch there);
- when partitions are revoked in a rebalance, their records not yet started are dropped and
  the processed prefix is committed at once, before another member takes over;
- on stop, the records not yet started are skipped and the processed prefix is committed.

Commits run beside the processing (`commits.CoalescedCommits`): one in flight at a time, so
they land in order, and the offsets of every fetch finished meanwhile go out together as the
next one, so a fast stream of small fetches does not pay a round trip each. A revocation or a
stop sends what is queued and waits for it. Committing only processed offsets keeps delivery
at-least-once.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from .commits import CoalescedCommits, Offsets
from .config import Settings
from .connection import client_options
from .health import close_within, start_with_retry
from .metrics import Metrics
from .pacing_kafka import paced_consumer

log = logging.getLogger(__name__)

POLL_MS = 500
MAX_RECORDS = 500
QUICK_FETCH_SECONDS = 5.0
"""A fetch worked off within this needs no polling alongside (the poll interval is minutes)."""
LEAVE_SECONDS = 2.0
"""Part of the grace period kept for the last commit and leaving the group."""

Handler = Callable[[ConsumerRecord], Awaitable[None]]
Batches = dict[TopicPartition, list[ConsumerRecord]]


def committable(batches: Batches, done: dict[TopicPartition, list[bool]]) -> Offsets:
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


class Fetch:
    """One fetch being worked off: which records are done, which partitions were taken away."""

    def __init__(self, batches: Batches) -> None:
        self.batches = batches
        self.done = {tp: [False] * len(records) for tp, records in batches.items()}
        self.revoked: set[TopicPartition] = set()

    def __len__(self) -> int:
        return sum(len(records) for records in self.batches.values())

    def work(self) -> Iterator[tuple[TopicPartition, int, ConsumerRecord]]:
        for tp, records in self.batches.items():
            for index, record in enumerate(records):
                if tp not in self.revoked:
                    yield tp, index, record

    def offsets(self, partitions: set[TopicPartition]) -> Offsets:
        """Committable offsets of `partitions`."""
        offsets = committable(self.batches, self.done)
        return {tp: offset for tp, offset in offsets.items() if tp in partitions}


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Commits what was processed before partitions move; counts each assignment and says how
    many partitions this member holds, so a dashboard shows rebalances and idle members."""

    def __init__(self, worker: "TopicWorker") -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        log.info("%s: partitions revoked: %s", self._worker.group, sorted(revoked))
        await self._worker.hand_over(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("%s: partitions assigned: %s", self._worker.group, sorted(assigned))
        self._worker.assigned(len(assigned))


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
        self._rebalances = metrics.rebalances.labels(topic, group)
        self._assigned_partitions = metrics.assigned_partitions.labels(topic, group)
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._fetch: Fetch | None = None
        self._commits = CoalescedCommits(self._commit)
        self.joined = False

    def _create(self) -> AIOKafkaConsumer:
        return paced_consumer(
            **client_options(self._settings),
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset=self._settings.offset_reset,
        )

    async def _start(self, consumer: AIOKafkaConsumer) -> None:
        consumer.subscribe([self.topic], listener=_Rebalance(self))
        await consumer.start()

    def assigned(self, partitions: int) -> None:
        """The group handed this member `partitions` partitions (the first join or a rebalance).

        The eager protocol aiokafka uses hands each member its whole new assignment."""
        self.joined = True
        self._rebalances.inc()
        self._assigned_partitions.set(partitions)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consume-{self.topic}")

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def crashed(self) -> bool:
        return self._task is not None and self._task.done() and not self._stopping.is_set()

    async def _run(self) -> None:
        consumer = await start_with_retry(f"consumer {self.group}", self._create, self._start)
        self._consumer = consumer
        waiting: Batches = {}
        while not self._stopping.is_set():
            batches = waiting or await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
            waiting = {}
            if batches:
                waiting = await self._process(consumer, Fetch(batches))
        await self._commits.flush()

    async def _process(self, consumer: AIOKafkaConsumer, fetch: Fetch) -> Batches:
        """Work off `fetch` while polling on paused partitions; records that still arrive
        (from partitions assigned meanwhile) are returned for the next round."""
        self._fetch = fetch
        self._consumed.inc(len(fetch))
        work = fetch.work()
        arrived: Batches = {}

        async def lane() -> None:
            for tp, index, record in work:
                if self._stopping.is_set():
                    return
                await self._handle(record)
                fetch.done[tp][index] = True

        lanes = asyncio.gather(*(lane() for _ in range(self._lanes)))
        try:
            # Most fetches finish long before the poll interval matters; only a slow one pays
            # for polling alongside it.
            await asyncio.wait({lanes}, timeout=QUICK_FETCH_SECONDS)
            while not lanes.done():
                for tp, records in (await self._poll_paused(consumer, lanes)).items():
                    arrived.setdefault(tp, []).extend(records)
            await lanes
        finally:
            consumer.resume(*consumer.paused())
            self._fetch = None
        # No await between handing the fetch back and queueing its commit: a revocation in
        # between would find neither.
        self._commits.add(fetch.offsets(set(consumer.assignment())))
        return arrived

    @staticmethod
    async def _poll_paused(consumer: AIOKafkaConsumer, lanes: asyncio.Future[Any]) -> Batches:
        """One poll with every assigned partition paused, cut short when the lanes finish.

        Polling keeps the member inside the group's max poll interval; pausing keeps it from
        fetching more. A partition assigned since the last pause may still deliver records:
        they are returned, not dropped.
        """
        consumer.pause(*consumer.assignment())
        polled = asyncio.ensure_future(consumer.getmany(timeout_ms=POLL_MS))
        await asyncio.wait({lanes, polled}, return_when=asyncio.FIRST_COMPLETED)
        if not polled.done():
            polled.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polled
            return {}
        batches: Batches = polled.result()
        return batches

    async def hand_over(self, revoked: set[TopicPartition]) -> None:
        """Partitions are moving to another member: skip their unstarted records and commit
        what was processed, so the new owner redoes at most the records in flight."""
        fetch = self._fetch
        if fetch is not None:
            fetch.revoked |= revoked
            self._commits.add(fetch.offsets(revoked))
        await self._commits.flush()

    async def _commit(self, offsets: Offsets) -> None:
        assert self._consumer is not None, "offsets come only from a started consumer's fetches"
        try:
            await self._consumer.commit(offsets)
        except KafkaError as err:
            log.warning("%s: commit failed, records will be redelivered: %r", self.group, err)

    async def stop(self, deadline: float) -> None:
        """Stop fetching, let in-flight records finish, commit and leave the group, all before
        `deadline` (a time.monotonic() value): the pod's grace period is a hard limit."""
        self._stopping.set()
        task = self._task
        if task is not None:
            if self._consumer is None:
                task.cancel()
            in_flight = max(deadline - LEAVE_SECONDS - time.monotonic(), 0)
            done, _ = await asyncio.wait({task}, timeout=in_flight)
            if not done:
                log.warning("%s: in-flight records outlived the grace period", self.group)
                task.cancel()
            [outcome] = await asyncio.gather(task, return_exceptions=True)
            if isinstance(outcome, Exception):
                log.error("%s: consumer loop failed: %r", self.group, outcome)
        if self._consumer is not None:
            await close_within(self._consumer.stop, deadline, f"consumer {self.group}")
