"""The one requeue path: every trigger's retry goes through the same capped backoff."""

from __future__ import annotations

import asyncio
import dataclasses
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


class Bounded:
    """A fake reconcile that records how many run at once and in which order they started."""

    def __init__(self, seconds: float = 0.01) -> None:
        self.seconds = seconds
        self.running = 0
        self.most = 0
        self.started: list[Owner] = []

    async def __call__(self, kube: Any, cache: Any, owner: Owner, written: Any) -> Outcome:
        self.running += 1
        self.most = max(self.most, self.running)
        self.started.append(owner)
        await asyncio.sleep(self.seconds)
        self.running -= 1
        return Outcome([])


OWNERS = [Owner("team", f"demo{index}", f"uid{index}") for index in range(40)]


def taking_turns(turns: int) -> Reconciler:
    """A reconciler of the cached OWNERS that runs `turns` reconciles at a time."""
    return Reconciler(
        Events(), complete_cache(*OWNERS), dataclasses.replace(FAST, concurrent_reconciles=turns)
    )


async def test_a_resync_reconciles_every_cached_demo_a_bounded_number_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From memory (the fake API access would fail any request), without the coalescing
    wait, never more than concurrent_reconciles at once."""
    bounded = Bounded()
    monkeypatch.setattr(module, "reconcile", bounded)
    slow_coalescing = Settings(coalesce_seconds=3600, concurrent_reconciles=4)
    reconciler = Reconciler(Events(), complete_cache(*OWNERS), slow_coalescing)
    await asyncio.wait_for(reconciler.resync(), timeout=10)
    assert sorted(bounded.started, key=lambda owner: owner.uid) == sorted(
        OWNERS, key=lambda owner: owner.uid
    )
    assert bounded.most == 4
    reconciler.stop()


async def test_new_demos_are_reconciled_a_bounded_number_at_a_time_in_arrival_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Demos applied together (kopf calls the creation handler of each at once) take their
    turns: the first to arrive is the first to get its status."""
    bounded = Bounded()
    monkeypatch.setattr(module, "reconcile", bounded)
    reconciler = taking_turns(3)
    await asyncio.wait_for(
        asyncio.gather(*(reconciler.reconcile(owner) for owner in OWNERS)), timeout=10
    )
    assert bounded.started == OWNERS
    assert bounded.most == 3
    reconciler.stop()


async def test_every_trigger_shares_the_one_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """New demos, child events and a resync pass at the same time: still the one bound."""
    bounded = Bounded()
    monkeypatch.setattr(module, "reconcile", bounded)
    reconciler = taking_turns(2)
    triggers = [
        *(reconciler.reconcile(owner) for owner in OWNERS[:10]),
        *(reconciler.reconcile(owner, coalesce=True) for owner in OWNERS[10:20]),
        reconciler.resync(),
    ]
    await asyncio.wait_for(asyncio.gather(*triggers), timeout=10)
    assert bounded.most == 2
    reconciler.stop()


def observing_cache(observed: list[Owner], new: list[Owner]) -> Cache:
    """A complete cache of demos at generation 1: `observed` with a status that observed it,
    `new` with no status yet."""
    cache = complete_cache(*observed, *new)
    for owner in [*observed, *new]:
        (body,) = cache._demos[(owner.namespace, owner.name)]
        body["metadata"]["generation"] = 1
        if owner in observed:
            body["status"] = {"observedGeneration": 1}
    return cache


def one_at_a_time(
    monkeypatch: pytest.MonkeyPatch, observed: list[Owner], new: list[Owner], seconds: float
) -> tuple[Bounded, Reconciler]:
    """A reconciler with one turn over `observing_cache`, whose reconciles take `seconds`."""
    bounded = Bounded(seconds)
    monkeypatch.setattr(module, "reconcile", bounded)
    settings = dataclasses.replace(FAST, concurrent_reconciles=1)
    return bounded, Reconciler(Events(), observing_cache(observed, new), settings)


async def test_demos_not_yet_observed_go_before_child_events_and_resyncs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rollouts of the first demos send child events (and a resync pass may come) while later
    new demos still wait: the new demos get the turns first, in arrival order, then the rest
    in theirs."""
    observed, new = OWNERS[:4], OWNERS[4:9]
    bounded, reconciler = one_at_a_time(monkeypatch, observed, new, 0.02)
    busy = asyncio.create_task(reconciler.reconcile(new[0]))
    await asyncio.sleep(0.005)
    triggers = []
    for old, fresh in zip(observed, new[1:], strict=True):
        triggers.append(asyncio.create_task(reconciler.reconcile(old, coalesce=True, settle=False)))
        triggers.append(asyncio.create_task(reconciler.reconcile(fresh)))
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(busy, *triggers), timeout=10)
    assert bounded.started == [*new, *observed]
    reconciler.stop()


async def test_a_child_event_waits_for_a_bounded_number_of_new_demos(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """However many new demos keep it waiting, a child event gets a turn after at most
    URGENT_STREAK_PER_SLOT of them per slot."""
    observed, new = OWNERS[:1], OWNERS[1:12]
    bounded, reconciler = one_at_a_time(monkeypatch, observed, new, 0.05)
    busy = asyncio.create_task(reconciler.reconcile(new[0]))
    await asyncio.sleep(0)
    child_event = asyncio.create_task(reconciler.reconcile(observed[0], coalesce=True))
    await asyncio.sleep(FAST.coalesce_seconds * 2)
    new_demos = [asyncio.create_task(reconciler.reconcile(owner)) for owner in new[1:]]
    await asyncio.wait_for(asyncio.gather(busy, child_event, *new_demos), timeout=10)
    assert bounded.started.index(observed[0]) == 1 + module.URGENT_STREAK_PER_SLOT
    reconciler.stop()


async def test_a_trigger_arriving_while_its_demo_waits_for_a_turn_is_coalesced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rollout's status updates of a demo that is queued behind others add no reconcile:
    the queued one reads everything when its turn comes."""
    bounded = Bounded(seconds=0.05)
    monkeypatch.setattr(module, "reconcile", bounded)
    reconciler = taking_turns(1)
    busy = asyncio.create_task(reconciler.reconcile(OWNERS[0]))
    queued = asyncio.create_task(reconciler.reconcile(OWNERS[1], coalesce=True))
    await asyncio.sleep(0.02)
    await asyncio.gather(*(reconciler.reconcile(OWNERS[1], coalesce=True) for _ in range(5)))
    await asyncio.wait_for(asyncio.gather(busy, queued), timeout=10)
    assert bounded.started == OWNERS[:2]
    reconciler.stop()


async def test_a_demo_waiting_for_its_own_reconcile_holds_no_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A spec change of a demo whose reconcile runs waits for that one without taking one of
    the turns, so another demo goes ahead meanwhile."""
    release = asyncio.Event()
    started: list[Owner] = []

    async def reconcile(kube: Any, cache: Any, owner: Owner, written: Any) -> Outcome:
        started.append(owner)
        if owner == OWNERS[0]:
            await release.wait()
        return Outcome([])

    monkeypatch.setattr(module, "reconcile", reconcile)
    reconciler = taking_turns(2)
    first = asyncio.create_task(reconciler.reconcile(OWNERS[0]))
    await asyncio.sleep(0.01)
    again = asyncio.create_task(reconciler.reconcile(OWNERS[0]))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(reconciler.reconcile(OWNERS[1]), timeout=10)
    assert started == [OWNERS[0], OWNERS[1]]
    release.set()
    await asyncio.wait_for(asyncio.gather(first, again), timeout=10)
    assert started == [OWNERS[0], OWNERS[1], OWNERS[0]]
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
