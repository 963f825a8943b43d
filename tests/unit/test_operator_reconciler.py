"""The one requeue path: every trigger's retry goes through the same capped backoff."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from scalingdemo_operator import reconcile as reconcile_module
from scalingdemo_operator import reconciler as module
from scalingdemo_operator.api import Event, Outcome, Owner
from scalingdemo_operator.cache import Cache
from scalingdemo_operator.kube import ApiException
from scalingdemo_operator.reconciler import Reconciler
from scalingdemo_operator.settings import Settings

from tests.unit.conftest import OWNER

pytestmark = pytest.mark.unit

FAST = Settings(retry_seconds=0.01, max_retry_seconds=0.04, coalesce_seconds=0.01)


def complete_cache(*owners: Owner) -> Cache:
    """A cache whose indexes were listed, holding these demos."""
    cache = Cache()
    demos = {
        (owner.namespace, owner.name): [
            {"metadata": {"namespace": owner.namespace, "name": owner.name, "uid": owner.uid}}
        ]
        for owner in owners
    }
    cache.bind(demos, {}, {}, {})
    cache.complete.set()
    return cache


class Events:
    """Stands in for the API access: the reconciler only posts events through it."""

    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []
        self.counted: list[int] = []

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.posted.append(manifest)
        return {**manifest, "metadata": {"name": f"event-{len(self.posted)}"}}

    async def patch_event(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.counted.append(patch["count"])


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

    async def reconcile(kube: Any, cache: Any, owner: Owner, written: Any) -> Outcome:
        calls.append(owner)
        if len(calls) == len(outcomes):
            done.set()
        return outcomes[len(calls) - 1]

    monkeypatch.setattr(module, "reconcile", reconcile)
    events = Events()
    reconciler = Reconciler(events, complete_cache(), FAST)
    await reconciler.reconcile(OWNER, coalesce=coalesce)
    await asyncio.wait_for(done.wait(), timeout=10)
    await asyncio.sleep(0.1)
    assert calls == [OWNER] * 4
    assert [item["reason"] for item in events.posted] == ["BrokerUnreachable"]
    assert events.counted == [2, 3]
    assert not reconciler._retries
    assert not reconciler._attempts
    reconciler.stop()


async def test_an_error_is_retried_like_an_unusable_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    done = asyncio.Event()

    async def reconcile(kube: Any, cache: Any, owner: Owner, written: Any) -> Outcome:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the API server said no")
        done.set()
        return Outcome([])

    monkeypatch.setattr(module, "reconcile", reconcile)
    reconciler = Reconciler(Events(), complete_cache(), FAST)
    await reconciler.reconcile(OWNER)
    await asyncio.wait_for(done.wait(), timeout=10)
    assert calls == 2
    reconciler.stop()


async def test_children_written_by_an_attempt_that_conflicted_are_still_announced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first attempt creates a child, then its status write meets a 409; the rerun finds the
    child there. The creation happened once and is announced once."""
    calls = 0

    async def reconcile(kube: Any, cache: Any, owner: Owner, written: list[Event]) -> Outcome:
        nonlocal calls
        calls += 1
        if calls == 1:
            written.append(Event("Normal", "Created", "Created Deployment demo-api"))
            raise ApiException(status=409, reason="Conflict")
        return Outcome([Event("Normal", "Ready", "ready")])

    monkeypatch.setattr(module, "reconcile", reconcile)
    events = Events()
    reconciler = Reconciler(events, complete_cache(OWNER), FAST)
    await reconciler.reconcile(OWNER)
    assert calls == 2
    assert [item["reason"] for item in events.posted] == ["Created", "Ready"]
    reconciler.stop()


async def test_a_success_cancels_the_pending_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    results = iter([Outcome([], retry=True), Outcome([])])

    async def reconcile(kube: Any, cache: Any, owner: Owner, written: Any) -> Outcome:
        return next(results)

    monkeypatch.setattr(module, "reconcile", reconcile)
    reconciler = Reconciler(
        Events(), complete_cache(), Settings(retry_seconds=3600, max_retry_seconds=3600)
    )
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

    async def reconcile(kube: Any, cache: Any, owner: Owner, written: Any) -> Outcome:
        nonlocal calls
        calls += 1
        return Outcome([])

    monkeypatch.setattr(module, "reconcile", reconcile)
    reconciler = Reconciler(Events(), complete_cache(), FAST)
    await asyncio.gather(*(reconciler.reconcile(OWNER, coalesce=True) for _ in range(5)))
    assert calls == 1
    reconciler.stop()


async def test_nothing_is_reconciled_before_the_cache_is_complete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Owner] = []

    async def reconcile(kube: Any, cache: Any, owner: Owner, written: Any) -> Outcome:
        calls.append(owner)
        return Outcome([])

    monkeypatch.setattr(module, "reconcile", reconcile)
    cache = Cache()
    reconciler = Reconciler(Events(), cache, FAST)
    waiting = asyncio.create_task(reconciler.reconcile(OWNER))
    await asyncio.sleep(0.05)
    assert calls == []
    cache.complete.set()
    await asyncio.wait_for(waiting, timeout=10)
    assert calls == [OWNER]
    reconciler.stop()


async def test_a_resync_reconciles_every_cached_demo_a_bounded_number_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From memory (the fake API access would fail any request), without the coalescing
    wait, never more than resync_concurrency at once."""
    owners = [Owner("team", f"demo{index}", f"uid{index}") for index in range(40)]
    running, most = 0, 0
    seen: list[Owner] = []

    async def reconcile(kube: Any, cache: Any, owner: Owner, written: Any) -> Outcome:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        seen.append(owner)
        return Outcome([])

    monkeypatch.setattr(module, "reconcile", reconcile)
    slow_coalescing = Settings(coalesce_seconds=3600, resync_concurrency=4)
    reconciler = Reconciler(Events(), complete_cache(*owners), slow_coalescing)
    await asyncio.wait_for(reconciler.resync(), timeout=10)
    assert sorted(seen, key=lambda owner: owner.uid) == sorted(owners, key=lambda o: o.uid)
    assert most == 4
    reconciler.stop()


class Demo:
    """API access to one demo, which the cache holds as watched: status patches are recorded
    and answered with the patched object, as the API server does."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.body: dict[str, Any] = {
            "metadata": {
                "namespace": OWNER.namespace,
                "name": OWNER.name,
                "uid": OWNER.uid,
                "generation": 1,
                "resourceVersion": "1",
            },
            "spec": spec,
        }
        self.patches: list[dict[str, Any]] = []
        self.cache = Cache()
        self.cache.bind({(OWNER.namespace, OWNER.name): [self.body]}, {}, {}, {})
        self.cache.complete.set()

    async def patch_status(
        self, owner: Owner, patch: dict[str, Any], version: str | None
    ) -> dict[str, Any]:
        self.patches.append(patch)
        metadata = {**self.body["metadata"], "resourceVersion": str(len(self.patches) + 1)}
        return {**self.body, "metadata": metadata, "status": patch}


async def test_an_unforeseen_error_ends_in_a_condition_a_warning_once_and_a_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def observe(*_: Any) -> None:
        raise UnicodeError("label too long")

    monkeypatch.setattr(reconcile_module, "_observe", observe)
    kube = Demo({"image": "workload:1", "kafka": {"bootstrapServers": "kafka:9092"}})
    first = await reconcile_module.reconcile(kube, kube.cache, OWNER, [])
    again = await reconcile_module.reconcile(kube, kube.cache, OWNER, [])
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
