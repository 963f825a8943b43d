"""The scaling loop end to end: examples/basic.yaml, the operator, real KEDA, the real HPA.

Load makes the worker scale up to its cap and quiet makes it shrink, with nothing stubbed: the
operator turns the example into a ScaledObject, KEDA measures the real Kafka lag (or asks the
real Prometheus, which scrapes a real worker process), and the controller manager's HPA loop
resizes the Deployment whose pods run on kwok's fake nodes. Pods there run no process, so with
the Kafka-lag trigger nothing consumes the backlog until the test does, as the workers' group.
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from scalingdemo_workload.contract import Env

from tests.integration.cluster import Cluster
from tests.operator_harness import (
    OperatorProcess,
    basic_example_on_the_bed,
    without_running_workers,
)
from tests.support import (
    SCALE_TIMEOUT,
    Wiring,
    WorkerProcess,
    drain_topic,
    eventually,
    eventually_async,
    produce,
    wait_for_topics,
)
from tests.testbed.control_plane import kubectl_run

NAME = "basic"
WORKER = f"{NAME}-worker"
HPA = f"keda-hpa-{WORKER}"
POLLING_INTERVAL = 1
SCALE_DOWN_WINDOW = 10
BACKLOG = 200
"""Lag 200 at the example's lagThreshold 10 asks for 20 workers; the 4 partitions cap it at 4."""
RAISED_THRESHOLD = 100
"""Lag 200 at lagThreshold 100 asks for 2 workers."""
TASK_MS = 100
TOP_UP = 50
"""Queue depth the test keeps behind the one real worker until KEDA has scaled to the cap."""
TOP_UP_PAUSE = 3.0
"""Longer than the worker's lag interval plus a scrape: a top-up shows before the next one."""


def demo_on_the_bed(namespace: str, bed: Any) -> dict[str, Any]:
    return basic_example_on_the_bed(
        namespace, bed.kafka_bootstrap, bed.prometheus.url, POLLING_INTERVAL, SCALE_DOWN_WINDOW
    )


def kafka_names(body: dict[str, Any]) -> tuple[list[str], str, str]:
    """The example's topics, its tasks topic and the workers' tasks group."""
    kafka = body["spec"]["kafka"]
    topics = [topic["name"] for topic in kafka["topics"].values()]
    return topics, kafka["topics"]["tasks"]["name"], kafka["consumerGroups"]["tasks"]


def triggers(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body["spec"]["worker"]["autoscaling"]["triggers"]


def scaled_object(cluster: Cluster) -> dict[str, Any]:
    """The worker's ScaledObject, empty until the operator has applied it."""
    return cluster.custom_object("keda.sh", "v1alpha1", "scaledobjects", WORKER) or {}


def keda_conditions(cluster: Cluster) -> dict[str, str]:
    conditions = scaled_object(cluster).get("status", {}).get("conditions", [])
    return {item["type"]: item["status"] for item in conditions}


def scaled_object_triggers(cluster: Cluster) -> dict[str, dict[str, Any]]:
    return {trigger["name"]: trigger for trigger in scaled_object(cluster)["spec"]["triggers"]}


class Scale:
    """What the HPA wants and what the Deployment has, read from the API."""

    def __init__(self, kube_api: client.ApiClient, cluster: Cluster) -> None:
        self.autoscaling = client.AutoscalingV2Api(kube_api)
        self.cluster = cluster

    def desired(self) -> int | None:
        hpa = self.autoscaling.read_namespaced_horizontal_pod_autoscaler(
            HPA, self.cluster.namespace
        )
        return hpa.status.desired_replicas

    def deployment(self) -> tuple[int, int]:
        """(spec.replicas, readyReplicas) of the worker Deployment."""
        found = self.cluster.apps.read_namespaced_deployment(WORKER, self.cluster.namespace)
        return found.spec.replicas, found.status.ready_replicas or 0

    def settled_at(self, replicas: int, what: str) -> None:
        eventually(
            self.desired,
            f"the HPA to want {replicas} ({what})",
            SCALE_TIMEOUT,
            accept=lambda found: found == replicas,
        )
        eventually(
            self.deployment,
            f"{replicas} Ready worker pods ({what})",
            SCALE_TIMEOUT,
            accept=lambda found: found == (replicas, replicas),
        )


async def start_demo(cluster: Cluster, body: dict[str, Any], bootstrap: str) -> None:
    """Create the demo and wait until the operator has created its topics at their size."""
    topics, _, _ = kafka_names(body)
    cluster.create(body)
    await wait_for_topics(bootstrap, topics, body["spec"]["kafka"]["topics"]["tasks"]["partitions"])


def worker_scaling(cluster: Cluster) -> dict[str, Any]:
    """status.scaling.worker as the operator last wrote it."""
    return cluster.get(NAME).get("status", {}).get("scaling", {}).get("worker", {})


def status_follows(cluster: Cluster, replicas: int, active: bool, what: str) -> dict[str, Any]:
    """Wait for status.scaling to show the HPA at `replicas` and taskLag's activity."""

    def shown(found: dict[str, Any]) -> bool:
        lag = next((item for item in found.get("triggers", []) if item["name"] == "taskLag"), {})
        return (found.get("currentReplicas"), found.get("desiredReplicas")) == (
            replicas,
            replicas,
        ) and lag.get("active") is active

    return eventually(
        lambda: worker_scaling(cluster), f"status.scaling to show {what}", SCALE_TIMEOUT, shown
    )


def keda_ready(cluster: Cluster) -> None:
    eventually(
        lambda: keda_conditions(cluster).get("Ready") == "True",
        "KEDA to report the ScaledObject Ready",
        SCALE_TIMEOUT,
    )


@pytest.mark.usefixtures("keda")
async def test_kafka_lag_scales_the_example_to_its_partitions_follows_the_threshold_and_shrinks(
    bed: Any, kube_api: client.ApiClient, cluster: Cluster, operator: OperatorProcess
) -> None:
    body = without_running_workers(demo_on_the_bed(cluster.namespace, bed))
    _, tasks, group = kafka_names(body)
    scale = Scale(kube_api, cluster)
    await start_demo(cluster, body, bed.kafka_bootstrap)
    keda_ready(cluster)
    scale.settled_at(1, "minReplicas before any load")
    assert keda_conditions(cluster).get("Active") == "False"
    idle = status_follows(cluster, 1, False, "one idle worker")
    assert idle["hpa"] == HPA
    assert {item["type"] for item in idle["kedaConditions"]} == {"Active", "Fallback", "Paused"}

    await produce(bed.kafka_bootstrap, tasks, [b"{}"] * BACKLOG, partitions=4)
    eventually(
        lambda: keda_conditions(cluster).get("Active") == "True",
        "KEDA to report the trigger Active on the backlog",
        SCALE_TIMEOUT,
    )
    scale.settled_at(4, "the partition count, which is the example's maxReplicas")
    busy = status_follows(cluster, 4, True, "four workers on an active taskLag")
    (lag,) = [item for item in busy["triggers"] if item["name"] == "taskLag"]
    assert (lag["target"], lag["targetType"]) == (10, "AverageValue")
    # KEDA reports at most partitions x lagThreshold without allowIdleConsumers.
    assert lag["value"] >= lag["target"]
    assert busy["lastScaleTime"]
    assert any(item["type"] == "ScalingLimited" for item in busy["hpaConditions"])
    assert cluster.get(NAME)["status"]["scaling"]["summary"] == "worker 4/4"
    namespaced = ("-n", cluster.namespace)
    wide = kubectl_run(bed.kubectl, bed.kubeconfig, "get", "sdemo", NAME, *namespaced, "-o", "wide")
    assert "worker 4/4" in wide, wide
    described = kubectl_run(bed.kubectl, bed.kubeconfig, "describe", "sdemo", NAME, *namespaced)
    for expected in ("Triggers:", "taskLag", "Target Type:", "AverageValue", "Scaled"):
        assert expected in described, described
    scaled = [message for _, reason, message in cluster.events(NAME) if reason == "Scaled"]
    assert scaled, "no Scaled event"
    assert scaled[0].startswith("worker 1→4: taskLag "), scaled
    assert scaled[0].endswith("/10 per replica"), scaled
    eventually(
        lambda: f"{WORKER} is active" in cluster.condition(NAME, "AutoscalingReady")["message"],
        "AutoscalingReady to carry KEDA's Active verdict",
    )

    raised = triggers(body)
    (task_lag,) = [item for item in raised if item["name"] == "taskLag"]
    task_lag["kafkaLag"]["lagThreshold"] = RAISED_THRESHOLD
    cluster.patch(NAME, {"worker": {"autoscaling": {"triggers": raised}}})
    eventually(
        lambda: scaled_object_triggers(cluster)["taskLag"]["metadata"]["lagThreshold"],
        "the ScaledObject to carry the raised lagThreshold",
        accept=lambda found: found == str(RAISED_THRESHOLD),
    )
    scale.settled_at(BACKLOG // RAISED_THRESHOLD, "lag / the raised lagThreshold")

    await drain_topic(bed.kafka_bootstrap, tasks, group, BACKLOG)
    eventually(
        lambda: keda_conditions(cluster).get("Active") == "False",
        "KEDA to report the trigger idle once the backlog is consumed",
        SCALE_TIMEOUT,
    )
    scale.settled_at(1, "minReplicas after the scale-down window")
    status_follows(cluster, 1, False, "one idle worker again")
    scaled = [message for _, reason, message in cluster.events(NAME) if reason == "Scaled"]
    assert any(message.startswith("worker 4→2: taskLag ") for message in scaled), scaled


def prometheus_value(url: str, query: str) -> float | None:
    """The one element KEDA would get for ``query``, or None while Prometheus has none."""
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(address, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def tasks(count: int) -> list[bytes]:
    return [
        json.dumps({"id": str(uuid.uuid4()), "duration_ms": TASK_MS}).encode() for _ in range(count)
    ]


@pytest.mark.usefixtures("keda")
async def test_queue_depth_from_the_real_worker_through_prometheus_scales_up_and_down(
    bed: Any,
    kube_api: client.ApiClient,
    cluster: Cluster,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    body = demo_on_the_bed(cluster.namespace, bed)
    # Only the Prometheus preset, so Prometheus alone can have moved the replicas.
    body["spec"]["worker"]["autoscaling"]["triggers"] = [
        item for item in triggers(body) if item["name"] == "queueDepth"
    ]
    (messages, tasks_topic), _, group = kafka_names(body)
    await start_demo(cluster, body, bed.kafka_bootstrap)
    # One real worker, in the workers' group, reporting the group's lag; labelled the way
    # Kubernetes service discovery labels the worker pods, so the preset's scope matches it.
    wiring = Wiring(bed.kafka_bootstrap, messages, tasks_topic, cluster.namespace)
    worker = WorkerProcess(
        wiring, tmp_path / "worker.log", **{Env.TASKS_GROUP: group, Env.TASK_CONCURRENCY: "1"}
    )
    target = f"{cluster.namespace}-worker"
    bed.prometheus.scrape(
        target,
        [worker.address],
        {"namespace": cluster.namespace, "service": WORKER, "pod": f"{WORKER}-0"},
    )
    try:
        keda_ready(cluster)
        query = scaled_object_triggers(cluster)["queueDepth"]["metadata"]["query"]
        eventually(
            lambda: prometheus_value(bed.prometheus.url, query),
            "Prometheus to scrape the worker's queue depth",
            accept=lambda found: found == 0,
        )
        scale = Scale(kube_api, cluster)
        scale.settled_at(1, "minReplicas while the queue is empty")

        last_top_up = -TOP_UP_PAUSE
        loop = asyncio.get_running_loop()
        active_seen = False

        async def kept_busy() -> tuple[tuple[int, int], bool]:
            """Top the queue up (the worker keeps working it off) and read the Deployment and
            whether KEDA has called the trigger Active (the worker commits whole batches, so
            the depth, and with it Active, may drop between two top-ups)."""
            nonlocal last_top_up, active_seen
            depth = prometheus_value(bed.prometheus.url, query) or 0
            if depth < TOP_UP and loop.time() - last_top_up > TOP_UP_PAUSE:
                await produce(bed.kafka_bootstrap, tasks_topic, tasks(TOP_UP), partitions=4)
                last_top_up = loop.time()
            active_seen |= keda_conditions(cluster).get("Active") == "True"
            return scale.deployment(), active_seen

        await eventually_async(
            kept_busy,
            "KEDA to call the trigger Active and scale the worker to maxReplicas on the queue "
            "depth Prometheus reports",
            SCALE_TIMEOUT,
            accept=lambda found: found == ((4, 4), True),
        )
        eventually(
            lambda: prometheus_value(bed.prometheus.url, query),
            "the real worker to work the queue off",
            SCALE_TIMEOUT,
            accept=lambda found: found == 0,
        )
        scale.settled_at(1, "minReplicas once the queue is empty for the scale-down window")
    finally:
        worker.stop(signal.SIGTERM)
        bed.prometheus.forget(target)
