"""Helpers for the workload's integration tests: per-test topics, metrics read from a running
process, and raw sockets for clients no HTTP library would send."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from tests.support import Wiring, WorkloadProcess, kafka_admin

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
