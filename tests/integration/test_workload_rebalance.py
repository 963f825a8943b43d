"""Consumers under scaling and shutdown: a rebalance redoes only the records in flight, each
member reports its rebalances and assigned partitions (an idle one reports 0), and a SIGTERM
ends the process within the grace period even when a consumer is idle."""

import signal
import time
from collections import Counter
from pathlib import Path

from scalingdemo_workload.contract import Env, Metric, Role

from tests.support import WorkerProcess, WorkloadProcess, eventually_async
from tests.workload_support import fresh_topics, produce_tasks, scrape

TASKS = 600
LANES = 2
GRACE_SECONDS = 3
EXIT_MARGIN_SECONDS = 2


async def test_scaling_up_redoes_at_most_the_records_in_flight(
    kafka_bootstrap: str, tmp_path: Path
):
    async with fresh_topics(kafka_bootstrap) as wiring:
        accepted = await produce_tasks(wiring, TASKS, duration_ms=20)
        lanes = {Env.TASK_CONCURRENCY: str(LANES)}
        first = WorkerProcess(wiring, tmp_path / "first.log", **lanes)
        second: WorkerProcess | None = None
        try:
            await first.wait_processed(60)
            second = WorkerProcess(wiring, tmp_path / "second.log", **lanes)
            joined = second

            async def everything() -> bool:
                return accepted <= set(first.processed()) | set(joined.processed())

            await eventually_async(everything, "every task to be processed", 180)
        finally:
            first.stop(signal.SIGTERM)
            if second is not None:
                second.stop(signal.SIGTERM)
    processed = Counter(first.processed() + second.processed())
    duplicates = sum(processed.values()) - len(processed)
    print(f"one scaling step (1 -> 2 workers): {duplicates} records processed twice")
    assert set(processed) == accepted
    assert duplicates <= LANES * 2, processed.most_common(5)


async def _membership(worker: WorkloadProcess, topic: str) -> tuple[float, float]:
    """(partitions assigned, assignments received) of the worker's consumer of `topic`."""
    samples = {
        name: value
        for (name, labels), value in (await scrape(worker)).items()
        if dict(labels).get("topic") == topic
    }
    return samples[Metric.CONSUMER_ASSIGNED_PARTITIONS], samples[Metric.CONSUMER_REBALANCES]


async def test_a_member_beyond_the_partition_count_reports_itself_idle(
    kafka_bootstrap: str, tmp_path: Path
):
    async with fresh_topics(kafka_bootstrap, partitions=1) as wiring:
        first = WorkerProcess(wiring, tmp_path / "first.log")
        second: WorkerProcess | None = None
        try:
            await first.wait_ready()
            assert await _membership(first, wiring.tasks_topic) == (1, 1)
            second = WorkerProcess(wiring, tmp_path / "second.log")
            await second.wait_ready()
            pair = (first, second)

            async def settled() -> list[tuple[float, float]]:
                return [await _membership(worker, wiring.tasks_topic) for worker in pair]

            # The first member's second assignment is the rebalance the second one caused.
            found = await eventually_async(
                settled,
                "one member holding the partition, the other idle",
                60,
                accept=lambda found: (
                    sorted(held for held, _ in found) == [0, 1] and found[0][1] >= 2
                ),
            )
            assert all(received >= 1 for _, received in found)
        finally:
            first.stop(signal.SIGTERM)
            if second is not None:
                second.stop(signal.SIGTERM)


async def test_sigterm_of_an_idle_worker_ends_within_the_grace_period(
    kafka_bootstrap: str, tmp_path: Path
):
    async with fresh_topics(kafka_bootstrap) as wiring:
        env = wiring.env(Role.WORKER, **{Env.SHUTDOWN_GRACE_SECONDS: str(GRACE_SECONDS)})
        worker = WorkloadProcess(env, tmp_path / "idle.log")
        try:
            await worker.wait_ready()
        except BaseException:
            worker.stop(signal.SIGKILL)
            raise
        started = time.monotonic()
        # stop() fails the test if the process outlives `within`.
        code = worker.stop(signal.SIGTERM, within=GRACE_SECONDS + EXIT_MARGIN_SECONDS)
        print(f"idle worker exited {time.monotonic() - started:.1f}s after SIGTERM")
        assert code == 0
