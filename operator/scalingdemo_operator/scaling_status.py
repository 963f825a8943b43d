"""status.scaling and the Scaled events, fed by the watches on the HPAs KEDA owns and on the
ScaledObjects.

Kept out of the reconcile: an HPA reports new metric values every sync while a demo scales,
and none of that needs children applied or topics checked. The watch events only update the
latest HPA and ScaledObject per component here; a write per demo follows at most once every
`scaling_status_seconds`, and only when what `assess.scaling` makes of them differs from the
status already written, so a demo that is not scaling costs no write at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from .api import COMPONENT_LABEL, Event, Owner, controlling_owner
from .assess.scaling import component_scaling, rescale_events, scaling_patch, scaling_status
from .cache import Cache
from .kube import ApiException, Kube

logger = logging.getLogger(__name__)

SCALED_OBJECT_LABEL = "scaledobject.keda.sh/name"
"""The label KEDA puts on the HPA it makes for a ScaledObject: the ScaledObject's name."""

Key = tuple[str, str]
"""(namespace, ScaledObject name)."""
Poster = Callable[[Mapping[str, Any], Iterable[Event]], Awaitable[None]]


class ScalingStatus:
    """The latest HPA and ScaledObject per component, and one throttled writer per demo."""

    def __init__(self, kube: Kube, cache: Cache, post: Poster, interval: float) -> None:
        self._kube = kube
        self._cache = cache
        self._post = post
        self._interval = interval
        self._hpas: dict[Key, Mapping[str, Any]] = {}
        self._scaled_objects: dict[Key, Mapping[str, Any]] = {}
        self._written_at: dict[str, float] = {}
        self._pending: dict[str, asyncio.Task[None]] = {}

    def hpa_changed(self, hpa: Mapping[str, Any], deleted: bool) -> None:
        metadata = hpa["metadata"]
        key = (metadata["namespace"], metadata.get("labels", {}).get(SCALED_OBJECT_LABEL, ""))
        self._remember(self._hpas, key, hpa, deleted)
        scaled_object = self._scaled_objects.get(key)
        if scaled_object is not None:
            self._schedule(scaled_object)

    def scaled_object_changed(self, scaled_object: Mapping[str, Any], deleted: bool) -> None:
        metadata = scaled_object["metadata"]
        key = (metadata["namespace"], metadata["name"])
        self._remember(self._scaled_objects, key, scaled_object, deleted)
        self._schedule(scaled_object)

    @staticmethod
    def _remember(
        cache: dict[Key, Mapping[str, Any]], key: Key, body: Mapping[str, Any], deleted: bool
    ) -> None:
        if deleted:
            cache.pop(key, None)
        else:
            cache[key] = body

    def _schedule(self, scaled_object: Mapping[str, Any]) -> None:
        """One write per demo at most every interval; triggers while one waits add nothing."""
        owner = controlling_owner(scaled_object)
        if owner is None or owner.uid in self._pending:
            return
        due = self._written_at.get(owner.uid, -self._interval) + self._interval
        task = asyncio.create_task(self._write_later(owner, max(due - time.monotonic(), 0)))
        self._pending[owner.uid] = task

    async def _write_later(self, owner: Owner, delay: float) -> None:
        await asyncio.sleep(delay)
        self._pending.pop(owner.uid, None)
        self._written_at[owner.uid] = time.monotonic()
        try:
            await self.write(owner)
        except Exception:
            logger.exception("status.scaling of %s/%s not written", owner.namespace, owner.name)

    def components(self, owner: Owner) -> dict[str, dict[str, Any]]:
        """status.scaling entries of every autoscaled component of `owner` seen so far."""
        found = {}
        for key, scaled_object in self._scaled_objects.items():
            if controlling_owner(scaled_object) != owner:
                continue
            component = scaled_object["metadata"].get("labels", {}).get(COMPONENT_LABEL)
            if component:
                found[component] = component_scaling(scaled_object, self._hpas.get(key))
        return found

    async def write(self, owner: Owner) -> None:
        """Write status.scaling when it differs from what the demo has; post what rescaled."""
        body = self._cache.demo(owner)
        if body is None:
            return
        previous = (body.get("status") or {}).get("scaling")
        current = scaling_status(self.components(owner))
        patch = scaling_patch(previous, current)
        if patch is None:
            return
        try:
            after = await self._kube.patch_status(owner, {"scaling": patch})
        except ApiException as error:
            if error.status == 404:
                return
            raise
        self._cache.wrote(owner, body["metadata"].get("resourceVersion"), after)
        await self._post(owner.object_reference(), rescale_events(previous, current))

    def stop(self) -> None:
        """Cancel the writes that wait (the operator is stopping)."""
        for task in self._pending.values():
            task.cancel()
        self._pending.clear()
