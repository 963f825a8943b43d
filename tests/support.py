"""Helpers shared by integration tests: polling, minimal manifests, the shipped manifests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from aiokafka import AIOKafkaConsumer

from tests.testbed.control_plane import kubectl_run

T = TypeVar("T")
REPOSITORY = Path(__file__).resolve().parents[1]
INSTALL_DIRECTORY = REPOSITORY / "deploy" / "operator"
EXAMPLES = sorted((REPOSITORY / "examples").glob("*.yaml"))
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.25


def eventually(
    probe: Callable[[], T],
    what: str,
    timeout: float = WAIT_SECONDS,
    accept: Callable[[T], object] = bool,
) -> T:
    """Poll ``probe`` until ``accept`` holds for its value, and return that value.

    Controllers and brokers converge asynchronously, so tests wait for the state
    they expect instead of sleeping for a guessed time; a failure names what never
    happened and the last value seen.
    """
    deadline = time.monotonic() + timeout
    while not accept(value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last value: {value!r}")
        time.sleep(POLL_SECONDS)
    return value


async def eventually_async(
    probe: Callable[[], Awaitable[T]],
    what: str,
    within: float = WAIT_SECONDS,
    accept: Callable[[T], object] = bool,
) -> T:
    """``eventually`` for probes that are coroutines (Kafka clients, aiohttp)."""
    deadline = time.monotonic() + within
    while not accept(value := await probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f}s waiting for {what}; last value: {value!r}")
        await asyncio.sleep(POLL_SECONDS)
    return value


@asynccontextmanager
async def group_consumer(bootstrap: str, topic: str, group: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer in ``group`` that reads from the start and commits only when told to."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


def deployment(name: str, replicas: int, owner_references: list[dict] | None = None) -> dict:
    """A Deployment whose pods the fake nodes will run (the image is never pulled)."""
    labels = {"app": name}
    metadata: dict = {"name": name, "labels": labels}
    if owner_references:
        metadata["ownerReferences"] = owner_references
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
            },
        },
    }


def rendered_install(kubectl: Path, kubeconfig: Path) -> list[dict]:
    """deploy/operator as `kubectl apply -k` would send it, one dict per object."""
    output = kubectl_run(kubectl, kubeconfig, "kustomize", str(INSTALL_DIRECTORY))
    return [document for document in yaml.safe_load_all(output) if document]
