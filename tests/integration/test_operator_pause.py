"""Pausing a demo, and freezing a component's replicas through KEDA, on the real bed.

The paused annotation hands a demo to the user: the operator says Paused once, then writes
nothing for it, whatever changes (counted from the API server's audit log), until the
annotation goes. pausedReplicas is KEDA's own pause, passed through to the ScaledObject.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scalingdemo_operator.api import PAUSED_ANNOTATION
from scalingdemo_operator.builders.keda import PAUSED_REPLICAS_ANNOTATION

from tests.integration.cluster import Cluster, count_writes, demo, settle
from tests.operator_harness import OperatorProcess
from tests.support import SCALE_TIMEOUT, eventually
from tests.unit.conftest import SEED_TRIGGERS

RECONCILES = "scalingdemo_operator_reconciles_total"
PART_OF = "app.kubernetes.io/part-of"
HAND_EDIT = {"metadata": {"labels": {PART_OF: "edited-by-hand"}}}
"""A Service edit by hand that the operator reverts once it reconciles again."""


def _pause(cluster: Cluster, name: str, value: str | None) -> None:
    cluster.custom.patch_namespaced_custom_object(
        "scalingdemo.dev",
        "v1alpha1",
        cluster.namespace,
        "scalingdemos",
        name,
        {"metadata": {"annotations": {PAUSED_ANNOTATION: value}}},
    )


def _reasons(cluster: Cluster, name: str) -> list[str]:
    return [reason for _, reason, _ in cluster.events(name)]


def _concurrency(cluster: Cluster) -> str:
    (container,) = cluster.deployments()["shop-worker"].spec.template.spec.containers
    return {item.name: item.value for item in container.env}["SCALINGDEMO_TASK_CONCURRENCY"]


def _part_of(cluster: Cluster) -> str:
    return str(cluster.services()["shop-api"].metadata.labels[PART_OF])


def _wait_resumed(cluster: Cluster) -> None:
    """Ready again, and no Paused condition left."""
    eventually(
        lambda: cluster.get("shop").get("status", {}).get("conditions", []),
        "the resumed demo to be Ready with no Paused condition",
        accept=lambda conditions: (
            cluster.converged("shop") and all(item["type"] != "Paused" for item in conditions)
        ),
    )


@pytest.fixture
def resyncing(bed: Any, crd: None, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """An operator with a resync every second: even the periodic pass must leave a pause be."""
    process = OperatorProcess(
        bed.kubeconfig, [namespace], tmp_path / "operator.log", resync_seconds=1
    )
    process.start()
    yield process
    process.stop()


def test_a_paused_demo_says_so_once_then_nothing_is_written_until_it_resumes(
    bed: Any, cluster: Cluster, resyncing: OperatorProcess
) -> None:
    cluster.create(demo("shop", worker={"concurrency": 2}))
    eventually(lambda: cluster.converged("shop"), "shop to become Ready")
    part_of = _part_of(cluster)

    _pause(cluster, "shop", "true")
    paused = eventually(
        lambda: cluster.condition("shop", "Paused"),
        "Paused=True",
        accept=lambda found: found.get("status") == "True",
    )
    assert paused["reason"] == "PausedByAnnotation"
    ready = cluster.condition("shop")
    assert (ready["status"], ready["reason"]) == ("Unknown", "Paused")
    eventually(lambda: "Paused" in _reasons(cluster, "shop"), "the Paused event")

    writes = count_writes(bed, cluster)
    before = resyncing.metric(RECONCILES, result="paused")
    cluster.patch("shop", {"worker": {"concurrency": 7}})
    cluster.core.patch_namespaced_service("shop-api", cluster.namespace, HAND_EDIT)
    eventually(
        lambda: resyncing.metric(RECONCILES, result="paused") >= before + 3,
        "the operator to reconcile the paused demo (its edit, the Service's event, resyncs)",
    )
    settle(lambda: len(writes()), "writes while paused")
    assert writes() == ["patch scalingdemos/shop", "patch services/shop-api"]
    assert _concurrency(cluster) == "2"
    assert _part_of(cluster) == "edited-by-hand"
    assert _reasons(cluster, "shop").count("Paused") == 1

    _pause(cluster, "shop", None)
    _wait_resumed(cluster)
    eventually(lambda: _concurrency(cluster) == "7", "the spec edited while paused to apply")
    eventually(lambda: _part_of(cluster) == part_of, "the hand edit to be reverted")
    eventually(lambda: "Resumed" in _reasons(cluster, "shop"), "the Resumed event")


def test_the_annotation_alone_pauses_and_resumes_the_demo(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    """Nothing but the annotation changes, both ways: kopf leaves annotations under its own
    prefix out of its diff and calls no update handler, so the operator has to notice."""
    cluster.create(demo("shop"))
    eventually(lambda: cluster.converged("shop"), "shop to become Ready")
    _pause(cluster, "shop", "true")
    eventually(lambda: cluster.condition("shop", "Paused").get("status") == "True", "Paused=True")
    _pause(cluster, "shop", None)
    _wait_resumed(cluster)


def _scaled_object(cluster: Cluster, name: str) -> dict[str, Any]:
    """The ScaledObject, or {} before the operator created it."""
    return cluster.custom_object("keda.sh", "v1alpha1", "scaledobjects", name) or {}


def _worker_replicas(cluster: Cluster) -> int:
    scale = cluster.apps.read_namespaced_deployment_scale("frozen-worker", cluster.namespace)
    return int(scale.spec.replicas)


@pytest.mark.usefixtures("keda")
def test_paused_replicas_freeze_the_component_through_keda_until_removed(
    cluster: Cluster, operator: OperatorProcess, kafka_bootstrap: str
) -> None:
    autoscaling = {
        "enabled": True,
        "maxReplicas": 3,
        "triggers": [SEED_TRIGGERS[0]],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
        "pausedReplicas": 2,
    }
    kafka = {"bootstrapServers": kafka_bootstrap, "topics": {"tasks": {"partitions": 3}}}
    cluster.create(
        demo("frozen", kafka=kafka, api={"enabled": False}, worker={"autoscaling": autoscaling})
    )
    annotations = eventually(
        lambda: _scaled_object(cluster, "frozen-worker").get("metadata", {}).get("annotations", {}),
        "the ScaledObject with KEDA's paused-replicas annotation",
        accept=lambda found: PAUSED_REPLICAS_ANNOTATION in found,
    )
    assert annotations[PAUSED_REPLICAS_ANNOTATION] == "2"
    eventually(
        lambda: _worker_replicas(cluster) == 2,
        "KEDA to hold the idle worker at the paused count",
        SCALE_TIMEOUT,
    )
    status = eventually(
        lambda: _scaled_object(cluster, "frozen-worker").get("status", {}),
        "KEDA to report the paused count",
        SCALE_TIMEOUT,
        accept=lambda found: found.get("pausedReplicaCount") == 2,
    )
    assert status["pausedReplicaCount"] == 2

    cluster.patch("frozen", {"worker": {"autoscaling": {"pausedReplicas": None}}})
    eventually(
        lambda: (
            PAUSED_REPLICAS_ANNOTATION
            not in _scaled_object(cluster, "frozen-worker")
            .get("metadata", {})
            .get("annotations", {})
        ),
        "the annotation to go with the field",
    )
    eventually(
        lambda: _worker_replicas(cluster) == 1,
        "KEDA to scale the idle worker back to minReplicas",
        SCALE_TIMEOUT,
    )
