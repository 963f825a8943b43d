"""Consumer lag per topic, the queue depth that dashboards and scaling decisions read.

Lag is the group's committed offset subtracted from the log-end offset, summed over the topic's
partitions: the same arithmetic KEDA's Kafka scaler uses, so the dashboard and the scaler agree.
It is measured from Kafka rather than counted locally because every replica then reports the
whole group's backlog (aggregate with max, not sum).
"""

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from .config import Settings
from .connection import client_options
from .health import Flag, cancel_all, probe_loop, start_with_retry
from .metrics import Metrics
from .pacing_kafka import paced_admin, paced_consumer

log = logging.getLogger(__name__)


def lag_of(
    end: dict[TopicPartition, int],
    committed: dict[TopicPartition, int],
    beginning: dict[TopicPartition, int],
    offset_reset: str,
) -> int:
    """Total lag; a partition without a committed offset counts as the reset policy would start."""
    total = 0
    for tp, end_offset in end.items():
        start = committed.get(tp, -1)
        if start < 0:
            start = beginning[tp] if offset_reset == "earliest" else end_offset
        total += max(end_offset - start, 0)
    return total


async def group_lag(
    admin: AIOKafkaAdminClient,
    offsets: AIOKafkaConsumer,
    topic: str,
    group: str,
    offset_reset: str,
) -> int:
    """The current lag of `group` on `topic`, through an admin client and an offsets reader."""
    # Asking for all topics, not this one: a metadata request naming a missing topic lets
    # the broker auto-create it with default partitions, before the operator creates it.
    described = await admin.describe_topics(None)
    partitions = [
        TopicPartition(topic, p["partition"])
        for t in described
        if t["topic"] == topic
        for p in t["partitions"]
    ]
    if not partitions:
        return 0
    end = await offsets.end_offsets(partitions)
    beginning = await offsets.beginning_offsets(partitions)
    committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    return lag_of(end, {tp: meta.offset for tp, meta in committed.items()}, beginning, offset_reset)


class LagMonitor:
    """Measures lag for (topic, group) pairs periodically and checks that Kafka answers."""

    def __init__(
        self, settings: Settings, metrics: Metrics, targets: list[tuple[str, str]]
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._targets = targets
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.reachable = Flag(metrics.kafka_ready.labels("consumer").set)

    async def measure(self, topic: str, group: str) -> int:
        """The current lag of `group` on `topic`."""
        if self._admin is None or self._offsets is None:
            raise RuntimeError("the lag monitor has not connected yet")
        return await group_lag(
            self._admin, self._offsets, topic, group, self._settings.offset_reset
        )

    async def _measure_loop(self) -> None:
        while True:
            for topic, group in self._targets:
                try:
                    lag = await asyncio.wait_for(
                        self.measure(topic, group), self._settings.lag_interval_seconds
                    )
                except Exception as err:
                    log.debug("lag of %s on %s not measured: %r", group, topic, err)
                else:
                    self._metrics.lag.labels(topic, group).set(lag)
            await asyncio.sleep(self._settings.lag_interval_seconds)

    async def _run(self) -> None:
        options = client_options(self._settings)
        admin = await start_with_retry(
            "admin", lambda: paced_admin(**options), AIOKafkaAdminClient.start
        )
        self._admin = admin
        self._offsets = await start_with_retry(
            "offsets reader", lambda: paced_consumer(**options), AIOKafkaConsumer.start
        )
        self._tasks.append(asyncio.create_task(self._measure_loop(), name="lag"))
        await probe_loop(
            "worker",
            admin.describe_cluster,
            self.reachable,
            self._settings.probe_interval_seconds,
        )

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name="lag-monitor"))

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        if self._offsets is not None:
            await self._offsets.stop()
        if self._admin is not None:
            await self._admin.close()
