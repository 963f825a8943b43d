"""The one requeue path: every trigger's retry goes through the same capped backoff."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from scalingdemo_operator import reconcile as reconcile_module
from scalingdemo_operator import reconciler as module
from scalingdemo_operator.api import Event, Outcome, Owner
from scalingdemo_operator.reconciler import Reconciler
from scalingdemo_operator.settings import Settings

from tests.unit.conftest import OWNER

pytestmark = pytest.mark.unit

FAST = Settings(retry_seconds=0.01, max_retry_seconds=0.04, coalesce_seconds=0.01)


class Events:
    """Stands in for the API access: the reconciler only posts events through it."""

    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []

    async def create(self, manifest: dict[str, Any]) -> None:
        self.posted.append(manifest)


def test_the_backoff_doubles_and_is_capped() -> None:
    settings = Settings(retry_seconds=10, max_retry_seconds=300)
    assert [settings.retry_delay(attempt) for attempt in range(7)] == [
        10,
        20,
        40,
        80,
        160,
        300,
        300,
    ]


@pytest.mark.parametrize("coalesce", [False, True])
async def test_a_retry_is_honoured_whatever_triggered_the_reconcile(
    monkeypatch: pytest.MonkeyPatch, coalesce: bool
) -> None:
    """A spec change (no coalescing) and a child event or resync (coalescing) alike."""
    outcomes = [Outcome([Event("Warning", "BrokerUnreachable", "down")], retry=True)] * 3
    outcomes.append(Outcome([]))
    calls: list[Owner] = []
    done = asyncio.Event()

    async def reconcile(kube: Any, owner: Owner) -> Outcome:
        calls.append(owner)
        if len(calls) == len(outcomes):
            done.set()
        return outcomes[len(calls) - 1]

    monkeypatch.setattr(module, "reconcile", reconcile)
    events = Events()
    reconciler = Reconciler(events, FAST)
    await reconciler.reconcile(OWNER, coalesce=coalesce)
    await asyncio.wait_for(done.wait(), timeout=10)
    await asyncio.sleep(0.1)
    assert calls == [OWNER] * 4
    assert [item["reason"] for item in events.posted] == ["BrokerUnreachable"] * 3
    assert not reconciler._retries
    assert not reconciler._attempts
    reconciler.stop()


async def test_an_error_is_retried_like_an_unusable_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    done = asyncio.Event()

    async def reconcile(kube: Any, owner: Owner) -> Outcome:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the API server said no")
        done.set()
        return Outcome([])

    monkeypatch.setattr(module, "reconcile", reconcile)
    reconciler = Reconciler(Events(), FAST)
    await reconciler.reconcile(OWNER)
    await asyncio.wait_for(done.wait(), timeout=10)
    assert calls == 2
    reconciler.stop()


async def test_a_success_cancels_the_pending_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    results = iter([Outcome([], retry=True), Outcome([])])

    async def reconcile(kube: Any, owner: Owner) -> Outcome:
        return next(results)

    monkeypatch.setattr(module, "reconcile", reconcile)
    reconciler = Reconciler(Events(), Settings(retry_seconds=3600, max_retry_seconds=3600))
    await reconciler.reconcile(OWNER)
    (pending,) = reconciler._retries.values()
    await reconciler.reconcile(OWNER)
    await asyncio.sleep(0)
    assert pending.cancelled()
    assert not reconciler._retries
    reconciler.stop()


async def test_triggers_that_arrive_while_one_waits_are_coalesced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0

    async def reconcile(kube: Any, owner: Owner) -> Outcome:
        nonlocal calls
        calls += 1
        return Outcome([])

    monkeypatch.setattr(module, "reconcile", reconcile)
    reconciler = Reconciler(Events(), FAST)
    await asyncio.gather(*(reconciler.reconcile(OWNER, coalesce=True) for _ in range(5)))
    assert calls == 1
    reconciler.stop()


class Demo:
    """API access holding one demo: reads return it, status patches are recorded."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.body = {
            "metadata": {"name": OWNER.name, "uid": OWNER.uid, "generation": 1},
            "spec": spec,
        }
        self.patches: list[dict[str, Any]] = []

    async def get(self, *_: str) -> dict[str, Any]:
        return self.body

    async def patch_status(self, owner: Owner, patch: dict[str, Any], version: str | None) -> None:
        self.patches.append(patch)
        self.body = {**self.body, "status": {**self.body.get("status", {}), **patch}}


async def test_an_unforeseen_error_ends_in_a_condition_a_warning_once_and_a_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def observe(*_: Any) -> None:
        raise UnicodeError("label too long")

    monkeypatch.setattr(reconcile_module, "_observe", observe)
    kube = Demo({"image": "workload:1", "kafka": {"bootstrapServers": "kafka:9092"}})
    first = await reconcile_module.reconcile(kube, OWNER)
    again = await reconcile_module.reconcile(kube, OWNER)
    ((ready,),) = [patch["conditions"] for patch in kube.patches]
    assert (ready["type"], ready["status"], ready["reason"]) == (
        "Ready",
        "False",
        "ReconcileFailed",
    )
    assert "UnicodeError: label too long" in ready["message"]
    assert [event.reason for event in first.events] == ["ReconcileFailed"]
    assert first.retry
    assert again.retry
    assert again.events == []
