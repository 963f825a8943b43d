"""Autoscaling against the real bed: KEDA's and VPA's upstream CRDs validate what we generate.

The bed installs the real ScaledObject, TriggerAuthentication and VerticalPodAutoscaler CRDs,
so an object the operator generates wrongly is refused by the API server, not by a mock. KEDA
itself is not started: these tests check what the operator writes, not how KEDA scales.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.cluster import Cluster, RemovedCrd, demo, removing_crd
from tests.operator_harness import OperatorProcess
from tests.support import PARTITIONS, SCALE_TIMEOUT, eventually, fill_topic
from tests.unit.conftest import AUTH, PROMETHEUS, SEED_AUTOSCALING, SEED_TRIGGERS

KEDA = ("keda.sh", "v1alpha1")
VPA = ("autoscaling.k8s.io", "v1")
STRIMZI = ("kafka.strimzi.io", "v1")
LAG = SEED_TRIGGERS[0]


def _get(cluster: Cluster, group: tuple[str, str], plural: str, name: str) -> dict | None:
    return cluster.custom_object(*group, plural, name)


def _scaled_object(cluster: Cluster, name: str) -> dict | None:
    return _get(cluster, KEDA, "scaledobjects", name)


APPLIED_REASONS = frozenset({"Applied", "ScaledObjectNotReady"})
"""The operator applied everything. KEDA, when an earlier test of the session started it, says
ScaledObjectNotReady for brokers that do not exist: that is KEDA's verdict, not a failure here."""


def _applied(cluster: Cluster, name: str) -> bool:
    body = cluster.get(name)
    return (
        body.get("status", {}).get("observedGeneration") == body["metadata"]["generation"]
        and cluster.condition(name, "AutoscalingReady").get("reason") in APPLIED_REASONS
        and cluster.condition(name, "VerticalScalingReady").get("status") == "True"
    )


def _messages(cluster: Cluster, reason: str) -> list[str]:
    """Messages of the demo's events with this reason (kopf posts them after the status)."""
    return [message for _, found, message in cluster.events("shop") if found == reason]


def _triggers(scaled: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {trigger["name"]: trigger for trigger in scaled["spec"]["triggers"]}


def test_the_api_server_accepts_every_generated_object(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    created = cluster.create(
        demo(
            "shop",
            kafka={
                "bootstrapServers": "kafka.kafka.svc.cluster.local:9092",
                "auth": AUTH,
                "topicManagement": "None",
            },
            monitoring={"prometheus": {"serverAddress": PROMETHEUS}},
            worker={"autoscaling": SEED_AUTOSCALING, "verticalScaling": {"enabled": True}},
            api={"verticalScaling": {"enabled": True, "maxAllowed": {"memory": "1Gi"}}},
        )
    )
    eventually(lambda: _applied(cluster, "shop"), "shop's scaling objects to be applied")

    scaled = _scaled_object(cluster, "shop-worker")
    assert scaled is not None
    (reference,) = scaled["metadata"]["ownerReferences"]
    assert (reference["name"], reference["uid"]) == ("shop", created["metadata"]["uid"])
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 6)
    triggers = _triggers(scaled)
    assert triggers["taskLag"]["metadata"]["lagThreshold"] == "5"
    assert triggers["taskLag"]["authenticationRef"] == {"name": "shop-kafka"}
    assert triggers["queueDepth"]["metadata"]["query"].startswith("sum(")
    assert triggers["cpu"]["metricType"] == "Utilization"
    authentication = _get(cluster, KEDA, "triggerauthentications", "shop-kafka")
    assert authentication is not None
    assert {ref["parameter"] for ref in authentication["spec"]["secretTargetRef"]} == {
        "username",
        "password",
        "ca",
    }

    worker_vpa = _get(cluster, VPA, "verticalpodautoscalers", "shop-worker")
    api_vpa = _get(cluster, VPA, "verticalpodautoscalers", "shop-api")
    assert worker_vpa is not None
    assert api_vpa is not None
    (policy,) = worker_vpa["spec"]["resourcePolicy"]["containerPolicies"]
    assert policy["controlledResources"] == ["memory"]
    assert worker_vpa["spec"]["updatePolicy"]["updateMode"] == "Initial"
    (policy,) = api_vpa["spec"]["resourcePolicy"]["containerPolicies"]
    assert policy["maxAllowed"] == {"memory": "1Gi"}

    narrowed = eventually(lambda: _messages(cluster, "VerticalScalingNarrowed"), "the Warning")
    assert narrowed == ["shop-worker leaves cpu to its autoscaling trigger(s)"]
    message = cluster.condition("shop", "VerticalScalingReady")["message"]
    assert message == (
        "VerticalPodAutoscaler(s) shop-api, shop-worker applied; "
        "shop-worker leaves cpu to its autoscaling trigger(s)"
    )


def test_editing_a_threshold_updates_in_place_and_disabling_deletes(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.create(
        demo("shop", worker={"replicas": 3, "autoscaling": {"enabled": True, "triggers": [LAG]}})
    )
    eventually(lambda: _applied(cluster, "shop"), "shop's scaling objects to be applied")
    uid = _scaled_object(cluster, "shop-worker")["metadata"]["uid"]
    capped = eventually(lambda: _messages(cluster, "ReplicasCappedByPartitions"), "the Warning")
    assert capped == [
        f"shop-worker trigger taskLag scales to at most the 6 partitions of topic "
        f"{cluster.namespace}-shop-tasks, not maxReplicas 10: add partitions or set "
        "allowIdleConsumers"
    ]

    edited = {**LAG, "kafkaLag": {"topic": "tasks", "lagThreshold": 50}}
    cluster.patch("shop", {"worker": {"autoscaling": {"triggers": [edited], "maxReplicas": 4}}})
    scaled = eventually(
        lambda: _scaled_object(cluster, "shop-worker"),
        "the new threshold in the ScaledObject",
        accept=lambda found: _triggers(found)["taskLag"]["metadata"]["lagThreshold"] == "50",
    )
    assert scaled["metadata"]["uid"] == uid
    assert scaled["spec"]["maxReplicaCount"] == 4
    eventually(
        lambda: _messages(cluster, "Updated"),
        "an Updated event naming the changed fields",
        accept=lambda messages: any(
            "ScaledObject shop-worker" in message
            and "spec.triggers[taskLag].metadata.lagThreshold" in message
            and "spec.maxReplicaCount" in message
            for message in messages
        ),
    )

    cluster.patch("shop", {"worker": {"autoscaling": {"enabled": False}}})
    eventually(lambda: _scaled_object(cluster, "shop-worker") is None, "the ScaledObject to go")
    eventually(
        lambda: cluster.deployments()["shop-worker"].spec.replicas == 3,
        "spec.replicas to be the operator's again",
    )
    eventually(
        lambda: _messages(cluster, "Deleted"),
        "the Deleted event",
        accept=lambda found: (
            "Deleted ScaledObject shop-worker: the spec no longer wants it" in found
        ),
    )
    eventually(
        lambda: cluster.condition("shop", "AutoscalingReady").get("reason") == "NotRequested",
        "AutoscalingReady to say autoscaling is not requested",
    )


def _autoscaled(**autoscaling: Any) -> dict[str, Any]:
    return demo("bad", worker={"autoscaling": {"enabled": True, **autoscaling}})


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_autoscaled(triggers=[LAG], minReplicas=5, maxReplicas=2), "minReplicas must not exceed"),
        (_autoscaled(triggers=[]), "at least one trigger"),
        (_autoscaled(triggers=[LAG, LAG]), "Duplicate value"),
        (_autoscaled(triggers=[{"name": "task-lag", "kafkaLag": {}}]), "triggers[0].name"),
        (
            _autoscaled(triggers=[{"name": "two", "kafkaLag": {}, "cpu": {"value": 70}}]),
            "exactly one of kafkaLag, prometheus, cpu and memory",
        ),
        (
            _autoscaled(
                triggers=[
                    {
                        "name": "q",
                        "prometheus": {
                            "query": "sum(up)",
                            "preset": "queueDepth",
                            "threshold": "1",
                        },
                    }
                ]
            ),
            "exactly one of query and preset",
        ),
        (
            _autoscaled(
                triggers=[
                    {
                        "name": "k",
                        "kafkaLag": {"allowIdleConsumers": True, "limitToPartitionsWithLag": True},
                    }
                ]
            ),
            "exclusive",
        ),
        (
            _autoscaled(triggers=[{"name": "c", "cpu": {"value": 70}}], minReplicas=0),
            "minReplicas 0",
        ),
        (demo("bad", worker={"verticalScaling": {"updateMode": "Auto"}}), "updateMode"),
        (
            _autoscaled(triggers=[{"name": "c", "cpu": {"value": 70}}], fallback={"replicas": 1}),
            "fallback needs a kafkaLag or prometheus trigger",
        ),
    ],
)
def test_the_api_server_refuses_combinations_that_cannot_work(
    cluster: Cluster, body: dict[str, Any], words: str
) -> None:
    with pytest.raises(ApiException) as caught:
        cluster.custom.create_namespaced_custom_object(
            "scalingdemo.dev", "v1alpha1", cluster.namespace, "scalingdemos", body, dry_run="All"
        )
    assert caught.value.status == 422
    assert words in caught.value.body, caught.value.body


def test_the_operator_refuses_what_needs_outside_knowledge(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    preset = {"name": "queue", "prometheus": {"preset": "queueDepth", "threshold": "5"}}
    cluster.create(_autoscaled(triggers=[preset]))
    ready = eventually(
        lambda: cluster.condition("bad"),
        "InvalidSpec",
        accept=lambda found: found.get("reason") == "InvalidSpec",
    )
    assert "spec.worker.autoscaling.triggers[0].prometheus" in ready["message"]
    assert "spec.monitoring.prometheus.serverAddress" in ready["message"]
    assert _scaled_object(cluster, "bad-worker") is None


HOT_LOOP_BOUND = 20
"""Reconciles allowed in QUIET_SECONDS: about one per second from the 1 s resync, and one per
status change of the children's rollout (a watched child changed); a hot loop makes hundreds."""
QUIET_SECONDS = 5


@dataclass(frozen=True)
class Scaler:
    """An add-on whose CRD a test removes, and what the demo must then say."""

    crd: str
    condition: str
    reason: str
    hint: str
    spec: dict[str, Any]
    child: Callable[[Cluster], object]


SCALERS = {
    "keda": Scaler(
        "scaledobjects.keda.sh",
        "AutoscalingReady",
        "KEDANotInstalled",
        "install KEDA",
        {"worker": {"autoscaling": {"enabled": True, "triggers": [LAG], "maxReplicas": 6}}},
        lambda cluster: _scaled_object(cluster, "shop-worker"),
    ),
    "vpa": Scaler(
        "verticalpodautoscalers.autoscaling.k8s.io",
        "VerticalScalingReady",
        "VPANotInstalled",
        "Vertical Pod Autoscaler is not installed",
        {"worker": {"verticalScaling": {"enabled": True}}},
        lambda cluster: _get(cluster, VPA, "verticalpodautoscalers", "shop-worker"),
    ),
    "strimzi": Scaler(
        "kafkatopics.kafka.strimzi.io",
        "TopicsReady",
        "StrimziNotInstalled",
        "install Strimzi",
        {
            "kafka": {
                "bootstrapServers": "kafka:9092",
                "topicManagement": "Strimzi",
                "strimziCluster": "demo-cluster",
            }
        },
        lambda cluster: _get(cluster, STRIMZI, "kafkatopics", "shop-tasks"),
    ),
}


@pytest.fixture(params=sorted(SCALERS))
def scaler(request: pytest.FixtureRequest) -> Scaler:
    return SCALERS[request.param]


@pytest.fixture
def removed(kube_api: client.ApiClient, scaler: Scaler) -> Iterator[RemovedCrd]:
    """No CRD of the scaler during the test."""
    with removing_crd(kube_api, scaler.crd) as crd:
        yield crd


def test_without_the_scaler_the_condition_says_what_to_install_and_it_recovers(
    bed: Any, crd: None, cluster: Cluster, tmp_path: Path, scaler: Scaler, removed: RemovedCrd
) -> None:
    resyncing = OperatorProcess(
        bed.kubeconfig, [cluster.namespace], tmp_path / "operator.log", resync_seconds=1
    )
    resyncing.start()
    try:
        cluster.create(demo("shop", **scaler.spec))
        condition = eventually(
            lambda: cluster.condition("shop", scaler.condition),
            f"{scaler.condition}=False with reason {scaler.reason}",
            accept=lambda found: found.get("reason") == scaler.reason,
        )
        assert condition["status"] == "False"
        assert scaler.hint in condition["message"]
        assert cluster.condition("shop")["reason"] == scaler.reason
        eventually(lambda: "shop-worker" in cluster.deployments(), "the workload to run anyway")

        before = resyncing.metric("scalingdemo_operator_reconciles_total")
        time.sleep(QUIET_SECONDS)
        reconciles = resyncing.metric("scalingdemo_operator_reconciles_total") - before
        assert reconciles <= HOT_LOOP_BOUND, "a hot loop"
        assert _messages(cluster, scaler.reason) == [condition["message"]]
        assert [kind for kind, _, _ in cluster.events("shop")].count("Warning") == 1

        removed.restore()
        eventually(
            lambda: (
                scaler.child(cluster) is not None
                and cluster.condition("shop", scaler.condition).get("reason") != scaler.reason
            ),
            f"recovery once {scaler.crd} is back",
        )
    finally:
        resyncing.stop()


@pytest.mark.usefixtures("keda")
async def test_keda_accepts_the_generated_scaled_object_and_scales_the_worker(
    cluster: Cluster, operator: OperatorProcess, kafka_bootstrap: str
) -> None:
    await fill_topic(kafka_bootstrap, f"{cluster.namespace}-shop-tasks")
    autoscaling = {
        "enabled": True,
        "maxReplicas": PARTITIONS,
        "pollingInterval": 1,
        "triggers": [LAG],
    }
    kafka = {
        "bootstrapServers": kafka_bootstrap,
        "topics": {"tasks": {"partitions": PARTITIONS}},
    }
    cluster.create(
        demo("shop", kafka=kafka, api={"enabled": False}, worker={"autoscaling": autoscaling})
    )

    def keda_ready() -> bool:
        found = _scaled_object(cluster, "shop-worker") or {}
        conditions = {
            item["type"]: item["status"] for item in found.get("status", {}).get("conditions", [])
        }
        return conditions.get("Ready") == "True"

    eventually(keda_ready, "KEDA to report our ScaledObject Ready", SCALE_TIMEOUT)
    eventually(
        lambda: (
            cluster.apps.read_namespaced_deployment_scale(
                "shop-worker", cluster.namespace
            ).spec.replicas
            == PARTITIONS
        ),
        f"KEDA's HPA to scale the worker to {PARTITIONS} on the backlog",
        SCALE_TIMEOUT,
    )
    eventually(
        lambda: cluster.condition("shop", "AutoscalingReady").get("status") == "True",
        "AutoscalingReady to reflect KEDA's Ready",
    )
    eventually(
        lambda: "shop-worker is active" in cluster.condition("shop", "AutoscalingReady")["message"],
        "AutoscalingReady to carry KEDA's Active verdict on the backlog",
    )
