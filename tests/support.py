"""Helpers shared by integration tests: polling, minimal manifests, the shipped manifests,
Kafka backlogs and workload processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from scalingdemo_operator.kafka.admin import DYNAMIC_TOPIC_CONFIG
from scalingdemo_workload.config import Settings, load_settings
from scalingdemo_workload.contract import Env, Role

from tests.testbed.control_plane import kubectl_run
from tests.testbed.processes import free_port, kill

T = TypeVar("T")
REPOSITORY = Path(__file__).resolve().parents[1]
INSTALL_DIRECTORY = REPOSITORY / "deploy" / "operator"
EXAMPLES = sorted(
    path
    for path in (REPOSITORY / "examples").glob("*.yaml")
    if "\nkind: ScalingDemo\n" in path.read_text()
)
"""The examples that hold ScalingDemos (examples/load-job.yaml is a Job that loads one)."""
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.25
PARTITIONS = 3
BACKLOG = 120
SCALE_TIMEOUT = 180
"""Bound on KEDA and the HPA controller acting on lag (pollingInterval 1 s, HPA sync 5 s)."""
PROCESSED_ID = re.compile(r"processed task id=([0-9a-f-]{36})")


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


def apply_reading_warnings(dynamic: DynamicClient, manifest: dict) -> tuple[dict, list[str]]:
    """Server-side apply ``manifest``; return the object and the response's admission warnings.

    Warnings travel only as ``Warning`` headers, which the typed and dynamic clients
    drop, so the request is sent through the API client's lower layer; a refusal
    raises ``ApiException`` with the API server's message.
    """
    api, metadata = dynamic.client, manifest["metadata"]
    resource = dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    method, url, headers, body, _ = api.param_serialize(
        method="PATCH",
        resource_path=resource.path(name=metadata["name"], namespace=metadata.get("namespace")),
        query_params=[("fieldManager", "scalingdemo-tests"), ("force", "true")],
        header_params={"Content-Type": "application/apply-patch+yaml"},
        body=manifest,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, header_params=headers, body=body)
    data = response.read()
    if not 200 <= response.status <= 299:
        raise ApiException(http_resp=response)
    return json.loads(data), response.headers.getlist("Warning")


def rendered_install(kubectl: Path, kubeconfig: Path) -> list[dict]:
    """deploy/operator as `kubectl apply -k` would send it, one dict per object."""
    output = kubectl_run(kubectl, kubeconfig, "kustomize", str(INSTALL_DIRECTORY))
    return [document for document in yaml.safe_load_all(output) if document]


@asynccontextmanager
async def kafka_admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client of its own, closed afterwards: reads what the code under test did."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def on_broker(admin: AIOKafkaAdminClient, topic: str) -> dict[str, Any] | None:
    """Partition count, replica count and per-topic configs as the broker reports them."""
    described = [t for t in await admin.describe_topics() if t["topic"] == topic]
    if not described:
        return None
    (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    (resource,) = response.to_object()["resources"]
    return {
        "partitions": len(described[0]["partitions"]),
        "replicas": len(described[0]["partitions"][0]["replicas"]),
        "config": {
            entry["config_names"]: entry["config_value"]
            for entry in resource["config_entries"]
            if entry["config_source"] == DYNAMIC_TOPIC_CONFIG
        },
    }


async def topic_partitions(bootstrap: str) -> dict[str, int]:
    """Every topic on the broker with its partition count."""
    async with kafka_admin(bootstrap) as admin:
        described = await admin.describe_topics(None)
    return {topic["topic"]: len(topic["partitions"]) for topic in described}


async def wait_for_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Wait until every topic in ``names`` exists with ``partitions`` partitions, each with a
    leader: records produced before a new topic's leaders are elected fail and are retried,
    which on a loaded machine delays them by tens of seconds."""

    async def sizes() -> dict[str, int | None]:
        async with kafka_admin(bootstrap) as admin:
            described = await admin.describe_topics(None)
        led = {
            topic["topic"]: sum(item["leader"] >= 0 for item in topic["partitions"])
            for topic in described
        }
        return {name: led.get(name) for name in names}

    await eventually_async(
        sizes,
        f"topics {names} with {partitions} partitions",
        accept=lambda found: found == dict.fromkeys(names, partitions),
    )


async def create_topics(bootstrap: str, names: list[str], partitions: int = PARTITIONS) -> None:
    """Create the topics among ``names`` that do not exist yet."""
    missing = [name for name in names if name not in await topic_partitions(bootstrap)]
    if not missing:
        return
    async with kafka_admin(bootstrap) as admin:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in missing])


async def produce(
    bootstrap: str, topic: str, values: list[bytes], partitions: int = PARTITIONS
) -> None:
    """Send ``values`` round-robin over the partitions, so every consumer of the group has lag."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for index, value in enumerate(values):
            await producer.send(topic, value, partition=index % partitions)
        await producer.flush()
    finally:
        await producer.stop()


async def fill_topic(
    bootstrap: str, topic: str, count: int = BACKLOG, partitions: int = PARTITIONS
) -> None:
    """A backlog of ``count`` records on ``topic`` (created when absent) that nobody consumed."""
    await create_topics(bootstrap, [topic], partitions)
    await produce(bootstrap, topic, [b"task"] * count, partitions)


async def drain_topic(bootstrap: str, topic: str, group: str, count: int = BACKLOG) -> None:
    """Consume ``count`` records as ``group`` and commit, which brings the group's lag to 0."""
    async with group_consumer(bootstrap, topic, group) as consumer:
        seen = 0
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000)
            seen += sum(len(records) for records in batches.values())
        await consumer.commit()


@dataclass(frozen=True)
class Wiring:
    """Topics and groups of one test, as environment variables for the workload."""

    bootstrap: str
    messages_topic: str
    tasks_topic: str
    suffix: str

    def env(self, role: str, **extra: str) -> dict[str, str]:
        """The workload's environment; an empty value in ``extra`` drops that variable."""
        env = {
            Env.ROLE: role,
            Env.BOOTSTRAP_SERVERS: self.bootstrap,
            Env.MESSAGES_TOPIC: self.messages_topic,
            Env.TASKS_TOPIC: self.tasks_topic,
            Env.MESSAGES_GROUP: f"messages-{self.suffix}",
            Env.TASKS_GROUP: f"tasks-{self.suffix}",
            Env.PROBE_INTERVAL_SECONDS: "0.5",
            Env.LAG_INTERVAL_SECONDS: "0.5",
            Env.TASK_UNIT_MS: "5",
            # Tests of delivery, not of latency: room for a broker on a loaded machine.
            Env.PRODUCE_TIMEOUT_SECONDS: "10",
            **extra,
        }
        return {name: value for name, value in env.items() if value}

    def settings(self, role: str, **extra: str) -> Settings:
        return load_settings(self.env(role, **extra))


class WorkloadProcess:
    """The workload as its own OS process (`python -m scalingdemo_workload`) on a free port."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.log = log
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        env = {**env, Env.HOST: "127.0.0.1", Env.PORT: str(self.port)}
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "scalingdemo_workload"],
                env={**os.environ, **env},
                stdout=sink,
                stderr=sink,
                start_new_session=True,
            )

    async def get(self, path: str) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{self.address}{path}") as response,
        ):
            return response.status, await response.text()

    async def wait_ready(self, within: float = 60) -> None:
        async def ready() -> bool:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                return (await self.get("/readyz"))[0] == 200
            except aiohttp.ClientConnectionError:
                return False

        await eventually_async(ready, f"{self.log.stem} to answer /readyz with 200", within)

    async def metric(self, name: str) -> float | None:
        _, text = await self.get("/metrics")
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else None

    def stop(self, sig: int, within: float = 60) -> int:
        """Signal the workload alone, then kill what outlives it, as a pod's end would.

        The worker's task pool runs in forkserver processes; after a SIGKILL nothing
        stops them but the end of the process group (in a pod, the container's).
        """
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=within)
        finally:
            kill(self.process.pid)


class WorkerProcess(WorkloadProcess):
    """A worker process logging every processed task id to a file."""

    def __init__(self, wiring: Wiring, log: Path, grace_seconds: float = 10, **extra: str) -> None:
        env = wiring.env(
            Role.WORKER,
            **{Env.LOG_LEVEL: "DEBUG", Env.SHUTDOWN_GRACE_SECONDS: str(grace_seconds), **extra},
        )
        super().__init__(env, log)

    def processed(self) -> list[str]:
        return PROCESSED_ID.findall(self.log.read_text(errors="replace"))

    async def wait_processed(self, count: int) -> None:
        async def enough() -> bool:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            return len(self.processed()) >= count

        await eventually_async(enough, f"{count} processed tasks", 90)
