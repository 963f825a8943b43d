"""The KEDA settings a ScalingDemo passes on, judged by KEDA's real schema and admission webhook.

Each ScaledObject is the builder's output for a spec that uses the settings, applied as the
operator applies it: KEDA's CRD must keep every field and its webhook must neither refuse nor
warn. What KEDA would refuse, the ScalingDemo's own schema refuses first, naming our field.
"""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from scalingdemo_operator.api import Owner
from scalingdemo_operator.builders.keda import scaled_object
from scalingdemo_operator.diff import differences
from scalingdemo_operator.spec import parse
from scalingdemo_operator.spec.scaling import FallbackBehavior

from tests.integration.cluster import Cluster, demo
from tests.support import apply_reading_warnings
from tests.unit.conftest import MINIMAL, SEED_TRIGGERS

LAG = SEED_TRIGGERS[0]
KAFKA_OPTIONS = {
    "excludePersistentLag": True,
    "scaleToZeroOnInvalidOffset": True,
    "ensureEvenDistributionOfPartitions": True,
    "partitionLimitation": "0,2-3",
}
MODIFIERS = {"formula": "taskLag", "target": "5"}
SETTINGS = {
    "idle": {"idleReplicaCount": 0, "initialCooldownPeriod": 30},
    "idle-polled-by-hand": {"idleReplicaCount": 0, "pollingInterval": 5, "cooldownPeriod": 60},
    "tolerance": {
        "behavior": {"scaleUp": {"tolerance": "0.05"}, "scaleDown": {"tolerance": "0.2"}}
    },
    "kafka-options": {"triggers": [{**LAG, "kafkaLag": {**LAG["kafkaLag"], **KAFKA_OPTIONS}}]},
    "limited-to-lag": {
        "triggers": [{**LAG, "kafkaLag": {**LAG["kafkaLag"], "limitToPartitionsWithLag": True}}]
    },
    "paused-replicas": {"pausedReplicas": 2},
    **{
        f"fallback-{behavior.lower()}": {
            "fallback": {"replicas": 2, "behavior": behavior},
            **({"scalingModifiers": MODIFIERS} if behavior == "scalingModifiers" else {}),
        }
        for behavior in get_args(FallbackBehavior)
    },
}


@pytest.fixture
def dynamic(kube_api: client.ApiClient) -> DynamicClient:
    return DynamicClient(kube_api)


def _built(namespace: str, name: str, autoscaling: dict[str, Any]) -> dict[str, Any]:
    """The worker's ScaledObject as the operator builds it for a demo `name`, without the owner
    reference (no such demo exists, and the garbage collector would remove the object)."""
    spec = parse(
        {**MINIMAL, "worker": {"autoscaling": {"enabled": True, "triggers": [LAG], **autoscaling}}}
    )
    manifest = scaled_object(spec, Owner(namespace=namespace, name=name, uid="0"), "worker")
    del manifest["metadata"]["ownerReferences"]
    return manifest


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_keda_keeps_each_setting_and_neither_refuses_nor_warns(
    dynamic: DynamicClient, namespace: str, name: str
) -> None:
    manifest = _built(namespace, name, SETTINGS[name])
    stored, warnings = apply_reading_warnings(dynamic, manifest)
    assert warnings == []
    assert differences(manifest, stored) == []
    assert stored["metadata"].get("annotations") == manifest["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (
            {"minReplicaCount": 1, "idleReplicaCount": 1},
            "IdleReplicaCount=1 must be less than MinReplicaCount=1",
        ),
        (
            {"fallback": {"failureThreshold": 3, "replicas": 1, "behavior": "scalingModifiers"}},
            "scalingModifiers fallback behavior requires scalingModifiers.formula",
        ),
    ],
    ids=["idle-not-below-min", "modifiers-fallback-without-formula"],
)
def test_keda_refuses_what_the_scalingdemo_schema_refuses_first(
    dynamic: DynamicClient, namespace: str, edit: dict[str, Any], words: str
) -> None:
    """KEDA's own verdict on the raw settings (our model builds no such ScaledObject, so the
    built one is edited): the refusals below stand for KEDA's, in our field names."""
    manifest = _built(namespace, "refused", {})
    manifest["spec"].update(edit)
    with pytest.raises(ApiException) as refused:
        apply_reading_warnings(dynamic, manifest)
    assert words in json.loads(refused.value.body)["message"]


REFUSED = {
    "idle-with-min-0": (
        {"minReplicas": 0, "idleReplicaCount": 0},
        "spec.worker.autoscaling.idleReplicaCount: Invalid value",
        "idleReplicaCount must be less than minReplicas",
    ),
    "idle-above-0": (
        {"minReplicas": 2, "idleReplicaCount": 1},
        "spec.worker.autoscaling.idleReplicaCount: Invalid value",
        "should be less than or equal to 0",
    ),
    "idle-on-cpu-only": (
        {"idleReplicaCount": 0, "triggers": [SEED_TRIGGERS[2]]},
        "spec.worker.autoscaling.idleReplicaCount: Invalid value",
        "idleReplicaCount needs a kafkaLag trigger or a prometheus query",
    ),
    "modifiers-fallback-without-formula": (
        {"fallback": {"replicas": 1, "behavior": "scalingModifiers"}},
        "spec.worker.autoscaling.fallback.behavior: Invalid value",
        "fallback.behavior scalingModifiers needs scalingModifiers.formula",
    ),
    "unknown-fallback-behavior": (
        {"fallback": {"replicas": 1, "behavior": "always"}},
        "spec.worker.autoscaling.fallback.behavior: Unsupported value",
        "currentReplicasIfHigher",
    ),
    "negative-tolerance": (
        {"behavior": {"scaleUp": {"tolerance": "-0.1"}}},
        "spec.worker.autoscaling.behavior.scaleUp.tolerance: Invalid value",
        "should match",
    ),
    "even-and-limited": (
        {
            "triggers": [
                {
                    **LAG,
                    "kafkaLag": {
                        "limitToPartitionsWithLag": True,
                        "ensureEvenDistributionOfPartitions": True,
                    },
                }
            ]
        },
        "spec.worker.autoscaling.triggers[0].kafkaLag: Invalid value",
        "ensureEvenDistributionOfPartitions and limitToPartitionsWithLag are exclusive",
    ),
    "partition-list-syntax": (
        {"triggers": [{**LAG, "kafkaLag": {"partitionLimitation": "0-"}}]},
        "spec.worker.autoscaling.triggers[0].kafkaLag.partitionLimitation: Invalid value",
        "should match",
    ),
    "paused-replicas-negative": (
        {"pausedReplicas": -1},
        "spec.worker.autoscaling.pausedReplicas: Invalid value",
        "should be greater than or equal to 0",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_the_scalingdemo_schema_refuses_naming_the_field(cluster: Cluster, name: str) -> None:
    autoscaling, field, words = REFUSED[name]
    body = demo("bad", worker={"autoscaling": {"enabled": True, "triggers": [LAG], **autoscaling}})
    with pytest.raises(ApiException) as refused:
        cluster.custom.create_namespaced_custom_object(
            "scalingdemo.dev", "v1alpha1", cluster.namespace, "scalingdemos", body, dry_run="All"
        )
    assert refused.value.status == 422
    message = json.loads(refused.value.body)["message"]
    assert field in message, message
    assert words in message, message
