"""A paused demo in the pure assessment and in kopf's bookkeeping: said once, then silence."""

from __future__ import annotations

from typing import Any

import kopf
import pytest
from scalingdemo_operator.api import PAUSED_ANNOTATION, is_paused
from scalingdemo_operator.assess.status import Observation, assess, invalid, paused
from scalingdemo_operator.handlers import (
    MemoryDiffBaseStorage,
    UnmarkedProgressStorage,
    _pause_unanswered,
)
from scalingdemo_operator.spec import parse

from tests.unit.conftest import MINIMAL, OWNER, SEED_TRIGGERS

pytestmark = pytest.mark.unit

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def _body(status: dict[str, Any] | None = None, annotation: str | None = "true") -> dict:
    annotations = {} if annotation is None else {PAUSED_ANNOTATION: annotation}
    return {
        "metadata": {"name": "demo", "generation": 3, "annotations": annotations},
        "status": status or {},
    }


def _types(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {item["type"]: (item["status"], item["reason"]) for item in status["conditions"]}


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), (None, False)])
def test_only_true_pauses(value: str | None, expected: bool) -> None:
    assert is_paused(_body(annotation=value)) is expected


def test_a_pause_is_said_once_and_then_nothing_changes() -> None:
    first = paused(_body(), NOW)
    assert _types(first.status) == {
        "Ready": ("Unknown", "Paused"),
        "Paused": ("True", "PausedByAnnotation"),
    }
    assert [(event.type, event.reason) for event in first.events] == [("Normal", "Paused")]
    assert (first.retry, first.result) == (False, "paused")
    again = paused(_body(first.status), LATER)
    assert (again.status, again.events) == ({}, [])


def test_the_first_reconcile_after_a_pause_drops_the_condition_and_says_resumed() -> None:
    status = paused(_body(), NOW).status
    seen = Observation(OWNER, parse(MINIMAL), _body(status, annotation=None), [])
    resumed = assess(seen, LATER)
    assert "Paused" not in _types(resumed.status)
    assert ("Normal", "Resumed") in [(event.type, event.reason) for event in resumed.events]
    refused = invalid(_body(status, annotation=None), "spec.image: bad", LATER)
    assert "Paused" not in _types(refused.status)
    assert refused.events[0].reason == "Resumed"


def test_an_unpaused_demo_never_says_resumed() -> None:
    seen = Observation(OWNER, parse(MINIMAL), _body(annotation=None), [])
    assert "Resumed" not in [event.reason for event in assess(seen, NOW).events]


def test_kopfs_record_of_the_handled_spec_is_memory_never_a_write() -> None:
    storage = MemoryDiffBaseStorage()
    patch = kopf.Patch()
    body = kopf.Body({**_body(annotation=None), "spec": {"image": "x"}})
    body["metadata"]["uid"] = "u1"
    essence = storage.build(body=body)
    storage.store(body=body, patch=patch, essence=essence)
    assert not patch
    assert storage.fetch(body=body) == essence
    storage.forget("u1")
    assert storage.fetch(body=body) is None


def test_a_handler_that_succeeds_at_once_leaves_kopf_nothing_to_write() -> None:
    """kopf stores the handler's progress and purges it in the same patch: nothing remains."""
    storage = UnmarkedProgressStorage(prefix="scalingdemo.dev")
    patch, body = kopf.Patch(), kopf.Body(_body(annotation=None))
    storage.store(
        key=kopf.HandlerId("reconcile_demo"), record={"retries": 1}, body=body, patch=patch
    )
    storage.purge(key=kopf.HandlerId("reconcile_demo"), body=body, patch=patch)
    assert not patch


@pytest.mark.parametrize("marked", [False, True])
def test_kopf_compares_no_annotation_under_the_groups_prefix_so_a_pause_calls_no_update(
    marked: bool,
) -> None:
    """Why the pause has its own event handler: the essence kopf diffs leaves it out, and the
    records older versions wrote, whether or not kopf ever marked the prefix as its own."""
    body = _body(annotation="true")
    body["metadata"]["annotations"]["scalingdemo.dev/last-handled-configuration"] = "{}"
    if marked:
        body["metadata"]["annotations"]["scalingdemo.dev/kopf-managed"] = "yes"
    essence = MemoryDiffBaseStorage().build(body=kopf.Body(body))
    assert "annotations" not in essence.get("metadata", {})


@pytest.mark.parametrize(
    ("annotation", "said", "unanswered"),
    [("true", False, True), ("true", True, False), (None, True, True), (None, False, False)],
)
def test_a_pause_is_answered_until_the_status_agrees_with_the_annotation(
    annotation: str | None, said: bool, unanswered: bool
) -> None:
    status = paused(_body(), NOW).status if said else {}
    assert _pause_unanswered(kopf.Body(_body(status, annotation=annotation))) is unanswered


def test_a_tolerance_the_api_server_drops_is_a_note_on_autoscaling() -> None:
    worker = {
        "autoscaling": {
            "enabled": True,
            "triggers": [SEED_TRIGGERS[0]],
            "behavior": {"scaleUp": {"tolerance": "0.05"}},
        }
    }
    spec = parse({**MINIMAL, "worker": worker})
    body = _body(annotation=None)
    dropped = assess(Observation(OWNER, spec, body, [], tolerance=False), NOW)
    (autoscaling,) = [
        item for item in dropped.status["conditions"] if item["type"] == "AutoscalingReady"
    ]
    assert (
        "demo-worker: behavior tolerance is not served by this API server" in autoscaling["message"]
    )
    assert "HPAConfigurableTolerance" in autoscaling["message"]
    kept = assess(Observation(OWNER, spec, body, [], tolerance=True), NOW)
    assert "not served" not in str(kept.status["conditions"])
