"""KEDA's idle mode, fallback behaviors, the HPA's tolerance, the kafka scaler's options and
paused replicas: what the spec accepts, refuses and builds."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from scalingdemo_operator.assess.status import one_short, partition_caps
from scalingdemo_operator.builders.keda import PAUSED_REPLICAS_ANNOTATION, scaled_object
from scalingdemo_operator.diff import needs_apply
from scalingdemo_operator.spec import SpecError

from tests.unit.conftest import OWNER, SEED_TRIGGERS, worker_spec

pytestmark = pytest.mark.unit

LAG = SEED_TRIGGERS[0]


def _autoscaling(**settings: Any) -> dict[str, Any]:
    return {"autoscaling": {"enabled": True, "triggers": [LAG], **settings}}


def _built(**settings: Any) -> dict[str, Any]:
    return scaled_object(worker_spec(_autoscaling(**settings)), OWNER, "worker")


def _lag(**options: Any) -> dict[str, Any]:
    return {**LAG, "kafkaLag": {**LAG["kafkaLag"], **options}}


def test_idle_mode_writes_its_settings_and_the_timing_it_makes_relevant() -> None:
    """KEDA polls and cools down towards the idle count, so both apply (no webhook warning)."""
    spec = _built(idleReplicaCount=0, initialCooldownPeriod=30)["spec"]
    assert (spec["idleReplicaCount"], spec["initialCooldownPeriod"]) == (0, 30)
    assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (15, 300)


def test_settings_left_out_of_the_spec_stay_out_of_the_scaled_object() -> None:
    built = _built()
    assert not {"idleReplicaCount", "initialCooldownPeriod", "fallback"} & set(built["spec"])
    assert PAUSED_REPLICAS_ANNOTATION not in built["metadata"]["annotations"]
    (trigger,) = built["spec"]["triggers"]
    assert not {
        "excludePersistentLag",
        "scaleToZeroOnInvalidOffset",
        "ensureEvenDistributionOfPartitions",
        "partitionLimitation",
    } & set(trigger["metadata"])


def test_the_kafka_scalers_options_are_strings_in_its_metadata() -> None:
    options = {
        "excludePersistentLag": True,
        "scaleToZeroOnInvalidOffset": True,
        "ensureEvenDistributionOfPartitions": True,
        "partitionLimitation": "0,2-3",
    }
    (trigger,) = _built(triggers=[_lag(**options)])["spec"]["triggers"]
    assert {key: trigger["metadata"][key] for key in options} == {
        "excludePersistentLag": "true",
        "scaleToZeroOnInvalidOffset": "true",
        "ensureEvenDistributionOfPartitions": "true",
        "partitionLimitation": "0,2-3",
    }


def test_fallback_behavior_and_tolerance_pass_through() -> None:
    spec = _built(
        fallback={"replicas": 2, "behavior": "currentReplicasIfHigher"},
        behavior={"scaleUp": {"tolerance": "0.05"}, "scaleDown": {"tolerance": "0.2"}},
    )["spec"]
    assert spec["fallback"] == {
        "failureThreshold": 3,
        "replicas": 2,
        "behavior": "currentReplicasIfHigher",
    }
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == {
        "scaleUp": {"tolerance": "0.05"},
        "scaleDown": {"tolerance": "0.2"},
    }


def test_paused_replicas_become_kedas_annotation_and_a_hand_removal_is_put_back() -> None:
    built = _built(pausedReplicas=2)
    assert built["metadata"]["annotations"][PAUSED_REPLICAS_ANNOTATION] == "2"
    live = {
        **built,
        "metadata": {**built["metadata"], "annotations": {**built["metadata"]["annotations"]}},
    }
    del live["metadata"]["annotations"][PAUSED_REPLICAS_ANNOTATION]
    assert needs_apply(built, live) == [f"metadata.annotations.{PAUSED_REPLICAS_ANNOTATION}"]


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        (
            {"minReplicas": 0, "idleReplicaCount": 0},
            "spec.worker.autoscaling: Value error, idleReplicaCount (0) must be less than "
            "minReplicas (0)",
        ),
        (
            {"idleReplicaCount": 0, "triggers": [SEED_TRIGGERS[2]]},
            "spec.worker.autoscaling: Value error, idleReplicaCount needs a kafkaLag trigger "
            "or a prometheus query",
        ),
        (
            {"idleReplicaCount": 1, "minReplicas": 2},
            "spec.worker.autoscaling.idleReplicaCount: Input should be less than or equal to 0",
        ),
        (
            {"fallback": {"replicas": 1, "behavior": "scalingModifiers"}},
            "spec.worker.autoscaling: Value error, fallback.behavior scalingModifiers needs "
            "scalingModifiers.formula",
        ),
        (
            {
                "triggers": [
                    _lag(limitToPartitionsWithLag=True, ensureEvenDistributionOfPartitions=True)
                ]
            },
            "spec.worker.autoscaling.triggers[0].kafkaLag: Value error, "
            "ensureEvenDistributionOfPartitions and limitToPartitionsWithLag are exclusive",
        ),
        (
            {"triggers": [_lag(partitionLimitation="3-1")]},
            "spec.worker.autoscaling.triggers[0].kafkaLag: Value error, partitionLimitation: the "
            "range 3-1 is empty (start after end)",
        ),
        (
            {"triggers": [_lag(partitionLimitation="0,6")]},
            "spec.worker.autoscaling.triggers[0].kafkaLag.partitionLimitation: partition 6 does "
            "not exist; the tasks topic has partitions 0-5 (spec.kafka.topics.tasks.partitions)",
        ),
    ],
    ids=[
        "idle-not-below-min",
        "idle-on-cpu-only",
        "idle-above-0",
        "modifiers-fallback-without-formula",
        "even-and-limited",
        "empty-range",
        "partition-beyond-the-topic",
    ],
)
def test_what_keda_would_refuse_is_refused_naming_the_field(
    settings: dict[str, Any], words: str
) -> None:
    with pytest.raises(SpecError) as refused:
        worker_spec(_autoscaling(**settings))
    assert any(words in problem for problem in refused.value.problems), refused.value.problems


@pytest.mark.parametrize(
    ("partitions", "tolerance", "short"),
    [
        (10, "0.1", False),
        (11, "0.1", True),
        (40, "0.1", True),
        (11, "0.05", False),
        (21, "0.05", True),
        (2, "0.1", False),
    ],
)
def test_the_hpa_stops_one_short_of_the_partitions_when_the_step_is_within_tolerance(
    partitions: int, tolerance: str, short: bool
) -> None:
    """keda#2908: at partitions - 1 replicas the capped lag is 1/(partitions - 1) above target."""
    assert one_short(partitions, Decimal(tolerance)) is short


def _caps(partitions: int, served: bool = True, **settings: Any) -> list[str]:
    spec = worker_spec(
        _autoscaling(**settings),
        kafka={"bootstrapServers": "kafka:9092", "topics": {"tasks": {"partitions": partitions}}},
    )
    return partition_caps(spec, OWNER, tolerance_served=served)


def test_the_partition_cap_note_names_the_missing_replica_and_the_tolerance_that_fixes_it() -> None:
    assert _caps(12, maxReplicas=12) == [
        "demo-worker trigger taskLag stops at 11 replicas, one short of the 12 partitions: "
        "there KEDA's capped lag (12 x lagThreshold) is 9.1% above the HPA's target, within its "
        "scale-up tolerance of 10.0%; set behavior.scaleUp.tolerance below 0.0909"
    ]
    assert _caps(12, maxReplicas=12, behavior={"scaleUp": {"tolerance": "0.05"}}) == []
    assert _caps(10, maxReplicas=10) == []
    assert _caps(12, maxReplicas=11) == []


def test_a_tolerance_the_cluster_drops_does_not_count() -> None:
    tolerant = {"maxReplicas": 12, "behavior": {"scaleUp": {"tolerance": "0.05"}}}
    assert len(_caps(12, served=False, **tolerant)) == 1


def test_even_distribution_caps_at_the_partitions_even_with_idle_consumers() -> None:
    even = _lag(allowIdleConsumers=True, ensureEvenDistributionOfPartitions=True)
    (note,) = _caps(6, maxReplicas=8, triggers=[even])
    assert note.endswith("not maxReplicas 8: add partitions")
    assert _caps(6, maxReplicas=8, triggers=[_lag(allowIdleConsumers=True)]) == []
