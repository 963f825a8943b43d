"""Condition transitions: lastTransitionTime moves only on a flip; Ready summarises."""

from __future__ import annotations

import pytest
from scalingdemo_operator.api import Event
from scalingdemo_operator.assess.conditions import (
    KEDA,
    VPA,
    Condition,
    merge_conditions,
    ready_condition,
    replica_counts,
    scaling_condition,
    workload_condition,
)
from scalingdemo_operator.assess.warnings import Note, note_warning, warnings_for

pytestmark = pytest.mark.unit

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def _deployment(available: str, generation: int = 1, observed: int = 1) -> dict:
    return {
        "metadata": {"name": "d", "generation": generation},
        "status": {
            "observedGeneration": observed,
            "replicas": 2,
            "readyReplicas": 1,
            "conditions": [{"type": "Available", "status": available}],
        },
    }


def test_a_new_condition_gets_the_current_time_and_generation() -> None:
    merged = merge_conditions([], [Condition("Ready", "False", "Waiting", "m")], 4, T0)
    assert merged == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "Waiting",
            "message": "m",
            "observedGeneration": 4,
            "lastTransitionTime": T0,
        }
    ]


def test_same_status_keeps_the_transition_time_even_if_reason_changes() -> None:
    before = merge_conditions([], [Condition("Ready", "False", "Waiting", "m")], 1, T0)
    after = merge_conditions(before, [Condition("Ready", "False", "InvalidSpec", "x")], 2, T1)
    assert after[0]["lastTransitionTime"] == T0
    assert (after[0]["reason"], after[0]["observedGeneration"]) == ("InvalidSpec", 2)


def test_a_flip_moves_the_transition_time() -> None:
    before = merge_conditions([], [Condition("Ready", "False", "Waiting", "m")], 1, T0)
    after = merge_conditions(before, [Condition("Ready", "True", "Ready", "ok")], 1, T1)
    assert after[0]["lastTransitionTime"] == T1


def test_foreign_conditions_are_kept_and_ready_comes_first() -> None:
    foreign = {"type": "AutoscalingReady", "status": "True", "lastTransitionTime": T0}
    merged = merge_conditions([foreign], [Condition("Ready", "True", "Ready", "")], 1, T1)
    assert [item["type"] for item in merged] == ["Ready", "AutoscalingReady"]
    assert merged[1] == foreign


def test_workload_is_available_only_when_every_deployment_says_so() -> None:
    deployments = {"demo-api": _deployment("True"), "demo-worker": _deployment("False")}
    condition = workload_condition(["demo-api", "demo-worker"], deployments)
    assert (condition.status, condition.reason) == ("False", "DeploymentsUnavailable")
    assert "demo-worker" in condition.message
    assert "demo-api" not in condition.message
    assert workload_condition(["demo-api"], deployments).status == "True"


def test_a_deployment_whose_controller_lags_behind_is_not_available() -> None:
    lagging = {"demo-api": _deployment("True", generation=2, observed=1)}
    assert workload_condition(["demo-api"], lagging).status == "False"
    assert workload_condition(["demo-api"], {}).status == "False"


def test_ready_names_the_first_unhealthy_condition() -> None:
    bad = Condition("WorkloadAvailable", "False", "DeploymentsUnavailable", "waiting")
    ok = Condition("WorkloadAvailable", "True", "DeploymentsAvailable", "fine")
    assert ready_condition([bad]) == Condition(
        "Ready", "False", "DeploymentsUnavailable", "waiting"
    )
    assert ready_condition([ok]).status == "True"


def test_replica_counts_default_to_zero() -> None:
    assert replica_counts(None) == {
        "replicas": 0,
        "readyReplicas": 0,
        "availableReplicas": 0,
        "updatedReplicas": 0,
    }
    assert replica_counts(_deployment("True"))["readyReplicas"] == 1


def test_a_warning_is_announced_once_per_new_problem() -> None:
    invalid = Condition("Ready", "False", "InvalidSpec", "spec.x: bad")
    assert warnings_for({}, invalid) == [Event("Warning", "InvalidSpec", "spec.x: bad")]
    previous = {"conditions": merge_conditions([], [invalid], 1, T0)}
    assert warnings_for(previous, invalid) == []
    other = Condition("Ready", "False", "InvalidSpec", "spec.y: bad")
    assert warnings_for(previous, other) == [Event("Warning", "InvalidSpec", "spec.y: bad")]
    waiting = Condition("Ready", "False", "DeploymentsUnavailable", "waiting")
    assert warnings_for({}, waiting) == []


def _scaled_object(status: str, message: str) -> dict:
    return {
        "kind": "ScaledObject",
        "metadata": {"name": "demo-worker"},
        "status": {"conditions": [{"type": "Ready", "status": status, "message": message}]},
    }


@pytest.mark.parametrize(
    ("wanted", "observed", "missing", "failures", "expected"),
    [
        ([], [], False, [], ("True", "NotRequested")),
        (["demo-worker"], [], True, [], ("False", "KEDANotInstalled")),
        (["demo-worker"], [], False, ["ScaledObject demo-worker: bad"], ("False", "ApplyFailed")),
        (["demo-worker"], [_scaled_object("True", "ok")], False, [], ("True", "Applied")),
        (
            ["demo-worker"],
            [_scaled_object("False", "broker unreachable")],
            False,
            [],
            ("False", "ScaledObjectNotReady"),
        ),
    ],
)
def test_autoscaling_condition(
    wanted: list, observed: list, missing: bool, failures: list, expected: tuple
) -> None:
    condition = scaling_condition(KEDA, wanted, observed, missing=missing, failures=failures)
    assert (condition.type, condition.status, condition.reason) == ("AutoscalingReady", *expected)


def test_keda_activity_is_surfaced_in_the_message() -> None:
    scaled_object = _scaled_object("True", "ok")
    scaled_object["status"]["conditions"].append(
        {
            "type": "Active",
            "status": "True",
            "message": "Scaling is performed because triggers are active",
        }
    )
    condition = scaling_condition(
        KEDA, ["demo-worker"], [scaled_object], missing=False, failures=[]
    )
    assert condition.message == (
        "ScaledObject(s) demo-worker applied; "
        "ScaledObject demo-worker is active: Scaling is performed because triggers are active"
    )


def test_keda_not_installed_tells_what_to_install() -> None:
    condition = scaling_condition(KEDA, ["demo-worker"], [], missing=True, failures=[])
    assert "install KEDA" in condition.message
    vpa = scaling_condition(VPA, ["demo-worker"], [], missing=True, failures=[])
    assert (vpa.type, vpa.reason) == ("VerticalScalingReady", "VPANotInstalled")


def test_a_vpa_narrowed_by_a_trigger_is_announced_once() -> None:
    condition = scaling_condition(
        VPA, ["demo-worker"], [], missing=False, failures=[], notes=["demo-worker leaves cpu"]
    )
    assert (
        condition.message == "VerticalPodAutoscaler(s) demo-worker applied; demo-worker leaves cpu"
    )
    notes = [Note("VerticalScalingNarrowed", "demo-worker leaves cpu")]
    (event,) = note_warning({}, condition, notes)
    assert event == Event("Warning", "VerticalScalingNarrowed", "demo-worker leaves cpu")
    previous = {"conditions": merge_conditions([], [condition], 1, T0)}
    assert note_warning(previous, condition, notes) == []
    assert note_warning({}, condition, []) == []


def test_a_note_is_not_announced_again_when_only_keda_activity_changes() -> None:
    cap = "demo-worker trigger lag scales to at most the 4 partitions"
    notes = [Note("ReplicasCappedByPartitions", cap)]
    idle = Condition(
        "AutoscalingReady", "True", "Applied", f"applied; demo-worker is idle: x; {cap}"
    )
    active = Condition(
        "AutoscalingReady", "True", "Applied", f"applied; demo-worker is active: y; {cap}"
    )
    previous = {"conditions": merge_conditions([], [idle], 1, T0)}
    assert note_warning(previous, active, notes) == []
    (event,) = note_warning(previous, active, [Note("ReplicasCappedByPartitions", "another cap")])
    assert event.reason == "ReplicasCappedByPartitions"


def test_notes_of_different_reasons_are_announced_by_reason() -> None:
    notes = [Note("ReplicasCappedByPartitions", "a cap"), Note("ScaleFromZeroUnverified", "zero")]
    condition = Condition("AutoscalingReady", "True", "Applied", "applied; a cap; zero")
    assert note_warning({}, condition, notes) == [
        Event("Warning", "ReplicasCappedByPartitions", "a cap"),
        Event("Warning", "ScaleFromZeroUnverified", "zero"),
    ]
