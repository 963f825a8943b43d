"""Helpers for the workload's integration tests: per-test topics, metrics read from a running
process, and raw sockets for clients no HTTP library would send."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families
from scalingdemo_workload.app import create_app
from scalingdemo_workload.config import Settings
from scalingdemo_workload.contract import Role

from tests.support import Wiring, WorkloadProcess, eventually_async, kafka_admin

PARTITIONS = 3


@asynccontextmanager
async def fresh_topics(bootstrap: str, partitions: int = PARTITIONS) -> AsyncIterator[Wiring]:
    """Fresh topics and group names for one test, deleted afterwards.

    Each step opens its own admin client: a test may restart the broker in between, which
    leaves a client opened before the restart with a dead connection.
    """
    suffix = uuid.uuid4().hex[:8]
    wiring = Wiring(bootstrap, f"messages-{suffix}", f"tasks-{suffix}", suffix)
    names = [wiring.messages_topic, wiring.tasks_topic]
    async with kafka_admin(bootstrap) as admin:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    yield wiring
    async with kafka_admin(bootstrap) as admin:
        await admin.delete_topics(names)


async def scrape(process: WorkloadProcess) -> dict[tuple[str, frozenset], float]:
    """Every sample of a running workload's /metrics, keyed by name and labels."""
    _, text = await process.get("/metrics")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def raw_exchange(address: str, data: bytes, wait: float = 10) -> bytes:
    """Send raw bytes; the first response (head and body), or b"" if the server closes first.

    `wait` bounds the whole exchange, so a server that neither answers nor closes fails the
    test instead of hanging it.
    """
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(wait):
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as closed:
                return closed.partial
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            return head + await reader.readexactly(int(length.group(1)) if length else 0)
    finally:
        writer.close()


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def until_ready(client: TestClient, within: float = 60) -> None:
    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await eventually_async(ready, "/readyz to answer 200", within)


async def read_topic(bootstrap: str, topic: str, count: int) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(60):
            while len(records) < count:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def post_ok(client: TestClient, path: str, **kwargs: object) -> list[str]:
    response = await client.post(path, **kwargs)
    assert response.status == 202, await response.text()
    return (await response.json())["ids"]


async def produce_tasks(wiring: Wiring, count: int, duration_ms: int) -> set[str]:
    async with serving(wiring.settings(Role.API)) as client:
        await until_ready(client)
        body = {"tasks": [{"duration_ms": duration_ms}] * count}
        return set(await post_ok(client, "/tasks", json=body))


def drawn_series(figure: Any) -> dict[str, list[Any]]:
    """Each labelled line of a scenario chart by its label: the numbers the PNG shows."""
    return {
        line.get_label(): list(line.get_ydata())
        for axis in figure.axes
        for line in axis.get_lines()
        if not line.get_label().startswith("_")
    }
