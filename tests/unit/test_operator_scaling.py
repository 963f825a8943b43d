"""status.scaling and the Scaled events from an HPA that KEDA owns and its ScaledObject."""

from typing import Any

import pytest
from scalingdemo_operator.api import Event
from scalingdemo_operator.assess.scaling import (
    component_scaling,
    rescale_events,
    scaling_patch,
    scaling_status,
)

from tests.unit.scaling_objects import DEPTH_METRIC, LAG_METRIC, hpa, scaled_object

pytestmark = pytest.mark.unit


def test_an_entry_carries_replicas_each_triggers_value_against_its_target_and_conditions():
    entry = component_scaling(scaled_object(), hpa(1, 4, "38500m", "2026-11-29T22:01:00Z"))
    assert (entry["currentReplicas"], entry["desiredReplicas"]) == (1, 4)
    assert entry["lastScaleTime"] == "2026-11-29T22:01:00Z"
    assert entry["hpa"] == "keda-hpa-demo-worker"
    assert entry["triggers"] == [
        {"name": "taskLag", "type": "kafka", "metric": LAG_METRIC, "value": 38.5,
         "target": 10.0, "targetType": "AverageValue", "active": True},
        {"name": "queueDepth", "type": "prometheus", "metric": DEPTH_METRIC, "value": 0.0,
         "target": 5.0, "targetType": "AverageValue", "active": False},
        {"name": "cpu", "type": "cpu", "metric": "cpu", "value": 12.0, "target": 60.0,
         "targetType": "Utilization", "active": None},
    ]  # fmt: skip
    assert [c["reason"] for c in entry["hpaConditions"]] == ["SucceededRescale", "TooManyReplicas"]
    assert [c["type"] for c in entry["kedaConditions"]] == ["Active", "Fallback", "Paused"]
    assert set(entry["kedaConditions"][0]) == {"type", "status", "reason", "message"}


def test_before_the_hpa_exists_the_triggers_are_listed_without_values():
    entry = component_scaling(scaled_object(), None)
    assert entry["desiredReplicas"] is None
    assert [(t["name"], t["value"], t["active"]) for t in entry["triggers"]] == [
        ("taskLag", None, True),
        ("queueDepth", None, False),
        ("cpu", None, None),
    ]
    assert scaling_status({"worker": entry})["summary"] == "worker -/-"


def test_the_summary_is_current_over_desired_per_component():
    worker = component_scaling(scaled_object(), hpa(1, 4, "38500m", None))
    api = component_scaling(scaled_object(), hpa(2, 2, "0", None))
    assert scaling_status({"worker": worker, "api": api})["summary"] == "api 2/2 worker 1/4"


def test_an_unchanged_reading_writes_nothing_and_a_dropped_component_is_removed():
    current = scaling_status({"worker": component_scaling(scaled_object(), hpa(1, 1, "0", None))})
    assert scaling_patch(None, current) == current
    # What the API server stored has no nulls: the same reading still compares equal.
    stored = {"summary": "worker 1/1", "worker": {
        key: value for key, value in current["worker"].items() if value is not None}}  # fmt: skip
    assert scaling_patch(stored, current) is None
    moved = scaling_status({"worker": component_scaling(scaled_object(), hpa(1, 4, "38", None))})
    assert scaling_patch(current, moved) == moved
    assert scaling_patch({**current, "api": {}}, current) == {**current, "api": None}


def worker_status(active: bool, *reading: Any) -> dict[str, Any]:
    return scaling_status({"worker": component_scaling(scaled_object(active), hpa(*reading))})


def test_a_rescale_is_told_once_with_the_trigger_that_drove_it():
    before = worker_status(False, 1, 1, "0", None)
    scaled = worker_status(True, 1, 4, "38500m", "2026-11-29T22:01:00Z")
    assert rescale_events(before, scaled) == [
        Event("Normal", "Scaled", "worker 1→4: taskLag 38.5/10 per replica")
    ]
    # The metrics move on within the same rescale: nothing more to tell.
    later = worker_status(True, 4, 4, "9", "2026-11-29T22:01:00Z")
    assert rescale_events(scaled, later) == []
    # Every other trigger reads zero: the CPU's proposal is the one the HPA followed.
    down = worker_status(False, 4, 1, "0", "2026-11-29T22:03:00Z")
    assert rescale_events(later, down) == [Event("Normal", "Scaled", "worker 4→1: cpu 12%/60%")]
    # A component seen for the first time has no rescale to tell yet.
    assert rescale_events(None, scaled) == []
