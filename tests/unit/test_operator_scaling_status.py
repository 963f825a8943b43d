"""The status.scaling writer: one write per demo per interval at most, none for an unchanged
reading, and the Scaled event posted with the write that carries a new lastScaleTime."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from scalingdemo_operator.api import COMPONENT_LABEL, Event, Owner
from scalingdemo_operator.cache import Cache
from scalingdemo_operator.scaling_status import SCALED_OBJECT_LABEL, ScalingStatus

from tests.unit.scaling_objects import hpa, scaled_object

pytestmark = pytest.mark.unit

OWNER = Owner(namespace="ns", name="demo", uid="uid-1")
INTERVAL = 0.2


class Demo:
    """Stands in for the API access to one ScalingDemo, which the cache holds as watched:
    its status takes merge patches, answered with the patched object."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self.patches: list[dict[str, Any]] = []
        self.cache = Cache()
        self.cache.bind({(OWNER.namespace, OWNER.name): [self.body()]}, {}, {}, {})
        self.cache.complete.set()

    def body(self) -> dict[str, Any]:
        metadata = {
            "namespace": OWNER.namespace,
            "name": OWNER.name,
            "uid": OWNER.uid,
            "resourceVersion": "1",
        }
        return {"metadata": metadata, "status": self.status}

    async def patch_status(self, owner: Owner, status: Mapping[str, Any]) -> dict[str, Any]:
        self.patches.append(dict(status))
        scaling = {**self.status.get("scaling", {}), **status["scaling"]}
        self.status["scaling"] = {key: value for key, value in scaling.items() if value is not None}
        return self.body()


def owned(body: dict[str, Any]) -> dict[str, Any]:
    body["metadata"]["labels"] = {COMPONENT_LABEL: "worker", SCALED_OBJECT_LABEL: "demo-worker"}
    body["metadata"]["ownerReferences"] = [
        {"kind": "ScalingDemo", "name": OWNER.name, "uid": OWNER.uid, "controller": True}
    ]
    return body


async def settled(status: ScalingStatus) -> None:
    """Wait until no write is pending."""
    while status._pending:
        await asyncio.gather(*status._pending.values())


async def test_a_burst_is_one_write_per_interval_and_an_unchanged_reading_none() -> None:
    demo, posted = Demo(), []

    async def post(reference: Mapping[str, Any], events: Iterable[Event]) -> None:
        posted.extend(events)

    status = ScalingStatus(demo, demo.cache, post, INTERVAL)  # type: ignore[arg-type]
    status.scaled_object_changed(owned(scaled_object(False)), deleted=False)
    status.hpa_changed(owned(hpa(1, 1, "0", None)), deleted=False)
    await settled(status)
    assert len(demo.patches) == 1
    assert demo.status["scaling"]["summary"] == "worker 1/1"

    # The same reading again (the operator restarted, a watch was reopened): no write.
    status.hpa_changed(owned(hpa(1, 1, "0", None)), deleted=False)
    await settled(status)
    assert len(demo.patches) == 1

    # A scale-up while the metrics flap: every event inside the interval joins one write.
    for lag in ("12", "25", "38500m"):
        status.hpa_changed(owned(hpa(1, 4, lag, "2026-11-29T22:01:00Z")), deleted=False)
    status.scaled_object_changed(owned(scaled_object(True)), deleted=False)
    await settled(status)
    assert len(demo.patches) == 2
    assert demo.status["scaling"]["summary"] == "worker 1/4"
    assert posted == [Event("Normal", "Scaled", "worker 1→4: taskLag 38.5/10 per replica")]

    # The ScaledObject goes (autoscaling switched off): the component's entry is removed.
    status.scaled_object_changed(owned(scaled_object(True)), deleted=True)
    await settled(status)
    assert demo.patches[-1]["scaling"]["worker"] is None
    assert demo.status["scaling"] == {"summary": ""}
