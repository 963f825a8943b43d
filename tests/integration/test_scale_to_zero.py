"""Scale to zero end to end: examples/scale-to-zero.yaml, the operator, real KEDA, the real HPA.

The workers start at zero. A backlog of tasks arrives; KEDA, which measures the group's lag in
Kafka itself, activates the Deployment (0 -> 1) and the HPA scales it out to the partition
count (1 -> N). Pods on kwok's nodes run no process, so a real worker process consumes as the
workers' group, as the pods would; every task accepted is processed. Once the lag is gone and
the cooldown has passed, KEDA takes the Deployment back to zero.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from scalingdemo_workload.contract import Env

from tests.integration.cluster import Cluster
from tests.operator_harness import OperatorProcess, scale_to_zero_example_on_the_bed
from tests.support import (
    SCALE_TIMEOUT,
    Wiring,
    WorkerProcess,
    eventually,
    wait_for_topics,
)
from tests.workload_support import produce_tasks

NAME = "scale-to-zero"
WORKER = f"{NAME}-worker"
POLLING_INTERVAL = 1
COOLDOWN = 10
BACKLOG = 200
"""Lag 200 at the example's lagThreshold 10 asks for 20 workers; its 4 partitions cap them at 4."""
TASK_MS = 5


class Zero:
    """The worker Deployment, its ScaledObject and KEDA's events about it, read from the API."""

    def __init__(self, kube_api: client.ApiClient, cluster: Cluster) -> None:
        self.cluster = cluster
        self.core = client.CoreV1Api(kube_api)

    def replicas(self) -> tuple[int, int]:
        """(spec.replicas, readyReplicas) of the worker Deployment."""
        found = self.cluster.apps.read_namespaced_deployment(WORKER, self.cluster.namespace)
        return found.spec.replicas, found.status.ready_replicas or 0

    def keda(self) -> dict[str, str]:
        found = self.cluster.custom.get_namespaced_custom_object(
            "keda.sh", "v1alpha1", self.cluster.namespace, "scaledobjects", WORKER
        )
        conditions = found.get("status", {}).get("conditions", [])
        return {item["type"]: item["status"] for item in conditions}

    def keda_events(self, reason: str) -> dict[str, int]:
        """KEDA's events with this reason about the worker's ScaledObject: message -> count
        (a repeated event is one object whose count grows)."""
        found = self.core.list_namespaced_event(
            self.cluster.namespace,
            field_selector=f"involvedObject.kind=ScaledObject,involvedObject.name={WORKER}",
        )
        return {item.message: item.count or 1 for item in found.items if item.reason == reason}

    def at(self, replicas: int, what: str) -> None:
        eventually(
            self.replicas,
            f"{replicas} Ready worker pods ({what})",
            SCALE_TIMEOUT,
            accept=lambda found: found == (replicas, replicas),
        )


@pytest.mark.usefixtures("keda")
async def test_workers_wake_from_zero_on_a_backlog_scale_out_and_return_to_zero(
    bed: Any,
    kube_api: client.ApiClient,
    cluster: Cluster,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    body = scale_to_zero_example_on_the_bed(
        cluster.namespace, bed.kafka_bootstrap, POLLING_INTERVAL, COOLDOWN
    )
    kafka = body["spec"]["kafka"]
    topics = kafka["topics"]
    group = kafka["consumerGroups"]["tasks"]
    partitions = topics["tasks"]["partitions"]
    cluster.create(body)
    await wait_for_topics(
        bed.kafka_bootstrap, [item["name"] for item in topics.values()], partitions
    )
    zero = Zero(kube_api, cluster)
    eventually(
        zero.keda,
        "KEDA to report the ScaledObject Ready",
        SCALE_TIMEOUT,
        accept=lambda found: found.get("Ready") == "True",
    )
    zero.at(0, "minReplicas 0 before any task")
    # The operator creates the Deployment at 0, so 0 pods can come before KEDA's first poll.
    eventually(
        lambda: zero.keda().get("Active"),
        "KEDA to call the idle worker inactive",
        SCALE_TIMEOUT,
        accept=lambda found: found == "False",
    )

    deactivations = sum(zero.keda_events("KEDAScaleTargetDeactivated").values())
    wiring = Wiring(
        bed.kafka_bootstrap, topics["messages"]["name"], topics["tasks"]["name"], "zero"
    )
    accepted = await produce_tasks(wiring, BACKLOG, duration_ms=TASK_MS)
    assert len(accepted) == BACKLOG
    eventually(
        lambda: zero.keda_events("KEDAScaleTargetActivated"),
        "KEDA to activate the workers from 0 to 1 on the backlog",
        SCALE_TIMEOUT,
        accept=lambda found: any("from 0 to 1" in message for message in found),
    )
    zero.at(partitions, "the HPA scales 1 -> N up to the partition count, the maxReplicas")

    # The pods run no process: the test's worker consumes as the workers' group.
    worker = WorkerProcess(wiring, tmp_path / "worker.log", **{Env.TASKS_GROUP: group})
    try:
        await worker.wait_processed(BACKLOG)
    finally:
        assert worker.stop(signal.SIGTERM) == 0, worker.log.read_text()[-3000:]
    assert set(worker.processed()) >= accepted, "every accepted task is processed"

    eventually(
        lambda: zero.keda_events("KEDAScaleTargetDeactivated"),
        "KEDA to deactivate the workers to 0 after the cooldown",
        SCALE_TIMEOUT,
        accept=lambda found: sum(found.values()) > deactivations,
    )
    zero.at(0, "back at zero once the backlog is gone and the cooldown has passed")
    assert zero.keda().get("Active") == "False"
