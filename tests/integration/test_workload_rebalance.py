"""Consumers under scaling and shutdown: a rebalance redoes only the records in flight, and a
SIGTERM ends the process within the grace period even when a consumer is idle."""

import signal
import time
from collections import Counter
from pathlib import Path

from scalingdemo_workload.contract import Env, Role

from tests.support import WorkerProcess, WorkloadProcess, eventually_async
from tests.workload_support import fresh_topics, produce_tasks

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
