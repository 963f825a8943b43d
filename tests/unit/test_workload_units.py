"""Pure helpers: lag arithmetic, commit offsets, how much CPU a task asks for, and what the
processor counts."""

import asyncio

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from scalingdemo_workload.consumers import committable
from scalingdemo_workload.contract import Metric
from scalingdemo_workload.lag import lag_of
from scalingdemo_workload.metrics import Metrics
from scalingdemo_workload.processing import Processor
from scalingdemo_workload.tasks import task_seconds

pytestmark = pytest.mark.unit

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


def test_lag_sums_partitions_from_committed_offsets():
    assert lag_of({P0: 10, P1: 7}, {P0: 4, P1: 7}, {P0: 0, P1: 0}, "earliest") == 6


@pytest.mark.parametrize(("reset", "expected"), [("earliest", 8), ("latest", 0)])
def test_lag_without_committed_offset_follows_reset_policy(reset, expected):
    assert lag_of({P0: 10}, {P0: -1}, {P0: 2}, reset) == expected


def test_task_seconds_prefers_duration():
    assert task_seconds({"complexity": 3, "duration_ms": 250}, 100) == 0.25
    assert task_seconds({"complexity": 3, "duration_ms": None}, 100) == pytest.approx(0.3)
    assert task_seconds({"duration_ms": 0}, 100) == 0


def records(*offsets: int) -> list[ConsumerRecord]:
    fields = {"timestamp": 0, "timestamp_type": 0, "key": None, "value": b"{}", "checksum": None}
    sizes = {"serialized_key_size": 0, "serialized_value_size": 2, "headers": []}
    return [ConsumerRecord("t", 0, offset, **fields, **sizes) for offset in offsets]


def test_only_the_processed_prefix_of_each_partition_is_committed():
    batches = {P0: records(10, 11, 12), P1: records(5, 6)}
    done = {P0: [True, False, True], P1: [False, True]}
    assert committable(batches, done) == {P0: 11}
    done = {P0: [True, True, True], P1: [True, True]}
    assert committable(batches, done) == {P0: 13, P1: 7}


class HeldPool:
    """A CPU pool whose burns wait until released, so a test can look at a task mid-way."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def burn(self, seconds: float) -> None:
        await self.release.wait()


async def test_processor_counts_tasks_in_progress_processed_and_failed():
    metrics, pool = Metrics(), HeldPool()
    processor = Processor(metrics, pool, unit_ms=10)
    task = records(0)[0]
    task.value = b'{"id": "a", "duration_ms": 5}'
    running = [asyncio.create_task(processor.task(task)) for _ in range(2)]
    await asyncio.sleep(0)

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert sample(Metric.TASKS_IN_PROGRESS) == 2
    pool.release.set()
    await asyncio.gather(*running)
    undecodable = records(1)[0]
    undecodable.value = b"[]"
    await processor.task(undecodable)
    assert sample(Metric.TASKS_IN_PROGRESS) == 0
    assert sample(Metric.RECORDS_PROCESSED, topic="t") == 2
    assert sample(Metric.RECORDS_FAILED, topic="t") == 1
    assert sample(Metric.TASK_DURATION + "_count", topic="t") == 2
