"""The workload against a real Kafka broker from the test bed.

Every test gets its own topics and consumer groups, so tests never see each other's records.
Workers that must be killed or drained run as real processes (`python -m scalingdemo_workload`);
the rest run in-process through aiohttp's test server.
"""

import io
import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from rich.console import Console
from scalingdemo_workload.contract import Env, Metric, Role
from scalingdemo_workload.keys import METRICS
from scalingdemo_workload.lag import LagMonitor
from scalingdemo_workload.loadgen import parse_args
from scalingdemo_workload.loadgen import run as run_load
from scalingdemo_workload.metrics import Metrics
from scalingdemo_workload.producer import BATCHES_FROM

from tests.support import Wiring, WorkerProcess, eventually_async, kafka_admin
from tests.workload_support import (
    PARTITIONS,
    fresh_topics,
    post_ok,
    produce_tasks,
    read_topic,
    serving,
    until_ready,
)


@pytest.fixture
async def wiring(kafka_bootstrap: str) -> AsyncIterator[Wiring]:
    async with fresh_topics(kafka_bootstrap) as topics:
        yield topics


def sample(client: TestClient, name: str, **labels: str) -> float:
    value = client.server.app[METRICS].registry.get_sample_value(name, labels)
    return value or 0.0


async def test_post_lands_on_the_topic_with_key_and_value(wiring: Wiring):
    async with serving(wiring.settings(Role.API)) as client:
        await until_ready(client)
        [keyed] = await post_ok(
            client, "/messages", json={"content": "hello", "key": "k-1", "attributes": {"a": "b"}}
        )
        batch = await post_ok(client, "/messages", json={"messages": [{"content": "x"}] * 3})
        tasks = await post_ok(client, "/tasks?count=2&complexity=3")
    messages = {r.value and json.loads(r.value)["id"]: r for r in await read_topic(
        wiring.bootstrap, wiring.messages_topic, 4
    )}  # fmt: skip
    assert set(messages) == {keyed, *batch}
    record = messages[keyed]
    assert record.key == b"k-1"
    value = json.loads(record.value)
    assert (value["content"], value["attributes"]) == ("hello", {"a": "b"})
    assert messages[batch[0]].key is None
    task_values = [json.loads(r.value) for r in await read_topic(
        wiring.bootstrap, wiring.tasks_topic, 2
    )]  # fmt: skip
    assert {v["id"] for v in task_values} == set(tasks)
    assert {v["complexity"] for v in task_values} == {3}


async def test_worker_processes_records_and_counters_move(wiring: Wiring):
    async with serving(wiring.settings(Role.ALL)) as client:
        await until_ready(client)
        await post_ok(client, "/messages?count=5")
        await post_ok(client, "/tasks", json={"tasks": [{"complexity": 2}] * 4 + [{}]})

        async def all_processed() -> bool:
            return (
                sample(client, Metric.RECORDS_PROCESSED, topic=wiring.messages_topic) == 5
                and sample(client, Metric.RECORDS_PROCESSED, topic=wiring.tasks_topic) == 5
            )

        await eventually_async(all_processed, "5 messages and 5 tasks to be processed", 60)
        assert sample(client, Metric.RECORDS_PRODUCED, topic=wiring.tasks_topic) == 5
        assert sample(client, Metric.RECORDS_CONSUMED, topic=wiring.tasks_topic) >= 5
        assert sample(client, Metric.RECORDS_FAILED, topic=wiring.tasks_topic) == 0
        assert sample(client, Metric.TASK_DURATION + "_count", topic=wiring.tasks_topic) == 5
        text = await (await client.get("/metrics")).text()
        assert f'{Metric.RECORDS_PROCESSED}{{topic="{wiring.tasks_topic}"}} 5.0' in text


async def test_lag_gauge_reflects_unconsumed_tasks(wiring: Wiring):
    async with serving(wiring.settings(Role.API)) as client:
        await until_ready(client)
        await post_ok(client, "/tasks?count=7")
    settings = wiring.settings(Role.WORKER)
    metrics = Metrics()
    monitor = LagMonitor(settings, metrics, [(settings.tasks_topic, settings.tasks_group)])
    monitor.start()
    labels = {"topic": settings.tasks_topic, "group": settings.tasks_group}
    try:

        async def lag_is_seven() -> bool:
            return metrics.registry.get_sample_value(Metric.CONSUMER_LAG, labels) == 7

        await eventually_async(lag_is_seven, "the lag gauge to show 7 unconsumed tasks", 30)
    finally:
        await monitor.stop()
    async with serving(settings) as worker:

        async def drained() -> bool:
            labels = {"topic": settings.tasks_topic, "group": settings.tasks_group}
            return (
                sample(worker, Metric.RECORDS_PROCESSED, topic=settings.tasks_topic) == 7
                and sample(worker, Metric.CONSUMER_LAG, **labels) == 0
                and worker.server.app[METRICS].registry.get_sample_value(
                    Metric.CONSUMER_LAG, labels
                )
                is not None
            )

        await eventually_async(drained, "the worker to drain the lag to 0", 60)


async def test_broker_outage_answers_503_quickly_and_recovers(bed, wiring: Wiring):
    if not bed.local:
        pytest.skip("stopping Kafka needs the local test bed, not an existing cluster")
    # The shipped produce timeout: the 2 s bound below is a promise about it.
    async with serving(wiring.settings(Role.ALL, **{Env.PRODUCE_TIMEOUT_SECONDS: ""})) as client:
        await until_ready(client)
        await post_ok(client, "/messages", json={"content": "before"})
        bed.kafka.stop()
        try:
            for _ in range(3):
                started = time.monotonic()
                response = await client.post("/messages", json={"content": "during"})
                elapsed = time.monotonic() - started
                assert response.status == 503
                assert response.headers["Retry-After"]
                assert elapsed < 2.0, f"503 took {elapsed:.2f}s"

            async def not_ready() -> bool:
                return (await client.get("/readyz")).status == 503

            await eventually_async(not_ready, "/readyz to turn 503 with the broker down", 30)
            checks = (await (await client.get("/readyz")).json())["checks"]
            assert checks["kafka:producer"] is False
            assert (await client.get("/healthz")).status == 200
        finally:
            bed.kafka.start()
        await until_ready(client, within=120)

        async def accepted() -> bool:
            response = await client.post("/messages", json={"content": "after"})
            return response.status == 202

        await eventually_async(accepted, "POST /messages to answer 202 again", 60)


async def test_sigkilled_worker_loses_no_accepted_task(wiring: Wiring, tmp_path: Path):
    accepted = await produce_tasks(wiring, 300, duration_ms=20)
    first = WorkerProcess(wiring, tmp_path / "first.log")
    try:
        await first.wait_processed(40)
    finally:
        first.stop(signal.SIGKILL)
    assert len(set(first.processed())) < len(accepted), "killed too late to test anything"
    second = WorkerProcess(wiring, tmp_path / "second.log")
    try:

        async def everything() -> bool:
            return accepted <= set(first.processed()) | set(second.processed())

        await eventually_async(everything, "every accepted task to be processed", 120)
    finally:
        assert second.stop(signal.SIGTERM) == 0
    processed = first.processed() + second.processed()
    assert set(processed) == accepted
    assert len(processed) >= len(accepted)


async def committed_offsets(wiring: Wiring) -> dict[TopicPartition, int]:
    async with kafka_admin(wiring.bootstrap) as admin:
        offsets = await admin.list_consumer_group_offsets(f"tasks-{wiring.suffix}")
    return {tp: meta.offset for tp, meta in offsets.items()}


async def test_sigterm_drains_commits_only_processed_work_and_exits_zero(
    wiring: Wiring, tmp_path: Path
):
    accepted = await produce_tasks(wiring, 300, duration_ms=20)
    worker = WorkerProcess(wiring, tmp_path / "drained.log")
    await worker.wait_processed(40)
    assert worker.stop(signal.SIGTERM) == 0
    drained = set(worker.processed())
    assert len(drained) < len(accepted), "stopped too late to test anything"
    committed = await committed_offsets(wiring)
    assert sum(committed.values()) > 0, "the drain committed nothing"
    records = await read_topic(wiring.bootstrap, wiring.tasks_topic, len(accepted))
    below_commit = {
        json.loads(r.value)["id"]
        for r in records
        if r.offset < committed.get(TopicPartition(r.topic, r.partition), 0)
    }
    assert below_commit <= drained, "offsets were committed for tasks never processed"
    log = worker.log.read_text()
    assert "LeaveGroup request succeeded" in log
    rest = WorkerProcess(wiring, tmp_path / "rest.log")
    try:

        async def everything() -> bool:
            return accepted <= drained | set(rest.processed())

        await eventually_async(everything, "the remaining tasks to be processed", 120)
    finally:
        assert rest.stop(signal.SIGTERM) == 0


async def test_load_generator_drives_the_api(wiring: Wiring):
    async with serving(wiring.settings(Role.API)) as client:
        await until_ready(client)
        url = str(client.make_url("")).rstrip("/")
        args = parse_args(
            [url, "--kind", "tasks", "--duration-ms", "0", "--rate", "20", "--duration", "1"]
        )
        console = Console(file=io.StringIO(), width=120, record=True)
        stats = await run_load(args, console)
        produced = sample(client, Metric.RECORDS_PRODUCED, topic=wiring.tasks_topic)
    assert stats.sent > 0
    assert stats.errors == 0
    assert produced == stats.records_accepted
    assert "Load summary" in console.export_text()


async def test_sigterm_abandons_tasks_longer_than_the_grace_period(wiring: Wiring, tmp_path: Path):
    await produce_tasks(wiring, 2, duration_ms=60_000)
    worker = WorkerProcess(wiring, tmp_path / "long.log", grace_seconds=1)

    async def both_running() -> bool:
        assert worker.process.poll() is None, worker.log.read_text()[-3000:]
        try:
            return await worker.metric(Metric.TASKS_IN_PROGRESS) == 2
        except aiohttp.ClientError:
            return False

    await eventually_async(both_running, "both minute-long tasks to be running", 60)
    assert worker.stop(signal.SIGTERM, within=30) == 0
    assert "in-flight records outlived the grace period" in worker.log.read_text()
    assert sum((await committed_offsets(wiring)).values()) == 0


async def test_a_large_batch_lands_whole_with_each_key_on_its_partition(wiring: Wiring):
    count = BATCHES_FROM * 3
    keys = [None if n % 2 else f"key-{n}" for n in range(count)]
    batch = [
        {"content": f"m-{n}"} | ({} if key is None else {"key": key}) for n, key in enumerate(keys)
    ]
    async with serving(wiring.settings(Role.API)) as client:
        await until_ready(client)
        ids = await post_ok(client, "/messages", json={"messages": batch})
    on_topic = await read_topic(wiring.bootstrap, wiring.messages_topic, count)
    by_id = {json.loads(record.value)["id"]: record for record in on_topic}
    assert sorted(by_id) == sorted(ids)
    partitions = list(range(PARTITIONS))
    for record_id, key in zip(ids, keys, strict=True):
        record = by_id[record_id]
        if key is not None:
            assert record.key == key.encode()
            assert record.partition == DefaultPartitioner()(key.encode(), partitions, partitions)
    keyless = {
        by_id[record_id].partition for record_id, key in zip(ids, keys, strict=True) if key is None
    }
    assert len(keyless) == 1, "the keyless records of one request share a partition"
