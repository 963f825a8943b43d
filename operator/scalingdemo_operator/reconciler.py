"""One object per operator that every reconcile goes through, whatever triggered it.

It owns what the triggers share: one reconcile at a time per ScalingDemo, a bound on how many
demos are reconciled at a time operator-wide (demos whose spec is not yet observed first),
coalescing of bursts, posting the events, and the ONE requeue path. A reconcile that asks to be
retried (Kafka could not be used) or fails is retried after a capped exponential backoff,
whether a spec change, a child's event or the periodic resync started it; a later reconcile
that needs no retry cancels the pending one and resets the backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from .api import Event, Outcome, Owner, controlling_owner
from .cache import Cache
from .kube import ApiException, Kube
from .reconcile import now, reconcile
from .recorder import Recorder
from .settings import Settings
from .slots import PrioritySlots

logger = logging.getLogger(__name__)

CONFLICT_RERUNS = 3
"""A status patch refused because the object changed since it was read is redone at once, with
the object read again; after this many in a row the retry backoff takes over."""
URGENT_STREAK_PER_SLOT = 4
"""While demos whose spec is not yet observed wait, a reconcile of an observed demo (a child's
event, the resync) waits for at most this many of them per slot before it gets the next slot:
1,000 new demos hold up a rollout's reconcile by a few rounds of slots, not until all are done,
and meanwhile the rollout's further updates coalesce into that one reconcile."""


class Reconciler:
    """Per-demo locking, coalescing and delayed retries; holds no state a restart would need."""

    def __init__(self, kube: Kube, cache: Cache, settings: Settings) -> None:
        self._kube = kube
        self._cache = cache
        self._settings = settings
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._waiting: set[str] = set()
        """UIDs with a reconcile pending (coalescing or queued on the lock) that has not read."""
        self._attempts: dict[str, int] = {}
        """Consecutive reconciles per UID that asked for a retry."""
        self._retries: dict[str, asyncio.Task[None]] = {}
        self._resync: asyncio.Task[None] | None = None
        self._recorder = Recorder(kube, time.monotonic, now)
        self._slots = PrioritySlots(
            settings.concurrent_reconciles,
            URGENT_STREAK_PER_SLOT * settings.concurrent_reconciles,
        )
        """Reconciles running at a time, whatever started them (the resync included)."""

    async def reconcile(self, owner: Owner, *, coalesce: bool = False, settle: bool = True) -> None:
        """Reconcile now, post the events, and schedule the retry the outcome asks for.

        With `coalesce`, a trigger returns at once when another reconcile of the same object is
        pending (not yet reading): that one reads everything afresh, so it covers this trigger
        too. A coalescing trigger that `settle`s also waits `coalesce_seconds` before it starts,
        so that the burst of Deployment status updates of a rollout becomes one pass; the resync
        has no burst to wait for. Nothing is read before the cache is complete.

        At most `concurrent_reconciles` demos are reconciled at a time: 1,000 demos applied at
        once are worked through a few at a time, each to its status, rather than all started
        together and all finished late. A demo whose generation the status has not yet
        observed is urgent: new and edited demos (also one that is paused, invalid or failing,
        whose status keeps the generation it last applied; such reconciles write little or
        nothing). Urgent reconciles go before the others waiting, in the order their triggers
        arrived; the others (a child's event, the resync, of a demo already observed) follow,
        and are never held up for long (`URGENT_STREAK_PER_SLOT`). Which one a reconcile is is
        read from the cache when it starts waiting for a slot. A trigger still pending counts
        as waiting until it has a slot, so the status updates of a rollout that arrive
        meanwhile are coalesced into it: the busier the operator, the more they are. The demo's
        own lock is taken first, so a second trigger of a demo being reconciled does not hold
        a slot while it waits for that one.
        """
        if coalesce and owner.uid in self._waiting:
            return
        lock = self._locks.setdefault(owner.uid, asyncio.Lock())
        self._waiting.add(owner.uid)
        try:
            if coalesce and settle:
                await asyncio.sleep(self._settings.coalesce_seconds)
            await self._cache.complete.wait()
            async with lock, self._slots.hold(urgent=self._cache.unobserved(owner)):
                self._waiting.discard(owner.uid)
                outcome = await self._run(owner)
        finally:
            self._waiting.discard(owner.uid)
        await self.post(owner.object_reference(), outcome.events)
        self._schedule(owner, outcome.retry)

    async def _run(self, owner: Owner) -> Outcome:
        """One reconcile; an error is logged and becomes a retry, like Kafka being unusable.
        The children written by every attempt are announced, also by an attempt that failed
        after writing them (the next one finds them written and does not announce them)."""
        done: list[Event] = []
        for _ in range(CONFLICT_RERUNS):
            try:
                outcome = await reconcile(self._kube, self._cache, owner, done)
            except Exception as error:
                if isinstance(error, ApiException) and error.status == 409:
                    continue
                logger.exception("reconcile of %s/%s failed", owner.namespace, owner.name)
                return Outcome(done, retry=True)
            return Outcome([*done, *outcome.events], outcome.retry)
        return Outcome(done, retry=True)

    def _schedule(self, owner: Owner, retry: bool) -> None:
        """Replace the pending retry: none after success, a later one after another failure."""
        pending = self._retries.pop(owner.uid, None)
        if pending is not None and pending is not asyncio.current_task():
            pending.cancel()
        if not retry:
            self._attempts.pop(owner.uid, None)
            return
        attempt = self._attempts.get(owner.uid, 0)
        self._attempts[owner.uid] = attempt + 1
        delay = self._settings.retry_delay(attempt)
        logger.info("%s/%s is retried in %gs", owner.namespace, owner.name, delay)
        self._retries[owner.uid] = asyncio.create_task(self._retry_later(owner, delay))

    async def _retry_later(self, owner: Owner, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.reconcile(owner, coalesce=True)

    async def child_changed(self, child: Mapping[str, Any]) -> None:
        """A child was edited or deleted: reconcile the ScalingDemo that controls it."""
        owner = controlling_owner(child)
        if owner is not None:
            await self.reconcile(owner, coalesce=True)

    async def resync(self) -> None:
        """Reconcile every ScalingDemo: the periodic drift repair.

        Watching the children repairs what the operator is told about; a periodic pass also
        repairs what it never saw (a change to something it does not watch, a reconcile that
        was lost with a restart). It reads only the cache, so it sends no LIST or GET, and like
        any reconcile it writes nothing when nothing differs. Its reconciles take their turns
        with every other one (`concurrent_reconciles` at a time): a pass that does find work
        does not flood the API server, nor hold up new demos for long.
        """
        await self._cache.complete.wait()
        await asyncio.gather(
            *(self.reconcile(owner, coalesce=True, settle=False) for owner in self._cache.owners())
        )

    def start_resync(self) -> None:
        """The periodic resync as one operator-wide task (a kopf timer would add finalizers)."""
        if self._settings.resync_seconds:
            self._resync = asyncio.create_task(self._resync_periodically())

    async def _resync_periodically(self) -> None:
        seconds = self._settings.resync_seconds
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.resync()
            except Exception:
                logger.exception("periodic resync failed; the next one is due in %ss", seconds)

    def stop(self) -> None:
        """Cancel the resync and every pending retry (the operator is stopping)."""
        for task in [*self._retries.values(), *([self._resync] if self._resync else [])]:
            task.cancel()
        self._retries.clear()

    async def post(self, reference: Mapping[str, Any], events: Iterable[Event]) -> None:
        """Every event goes out through the one recorder, so repeats are counted whoever posts."""
        await self._recorder.post(reference, events)
