"""Posting events on ScalingDemos, a repeat counted on the event already posted.

A condition can come back with the same words shortly after it went away: KEDA's own Ready
flips while the HPA it owns catches up with a failing trigger, so the same Warning would be
posted again and again. Like client-go's event recorder, an event identical to one posted on the
same object within `SERIES_SECONDS` is not posted anew: the posted event's `count` and
`lastTimestamp` are patched, which `kubectl describe` shows as "(x3 over 2m)". What is
remembered lives only as long as the window, and only in memory: after a restart the first
repeat starts a new series.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .api import Event
from .builders.common import event
from .kube import ApiException, Kube

logger = logging.getLogger(__name__)

SERIES_SECONDS = 600.0
"""How long after its last occurrence an event is counted on rather than posted again (the
span client-go's correlator aggregates over)."""

SeriesKey = tuple[str, str, str, str]
"""(uid of the object, type, reason, message): what makes two events the same."""


@dataclass
class Series:
    """One posted event and its repeats; the lock keeps a repeat from racing its first post."""

    last: float
    count: int = 0
    name: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Recorder:
    """Posts events through the API client (kopf.event works only inside a kopf handler, and
    retries, the resync and the scaling watch have events to post too)."""

    def __init__(self, kube: Kube, clock: Callable[[], float], stamp: Callable[[], str]) -> None:
        self._kube = kube
        self._clock = clock
        self._stamp = stamp
        self._series: OrderedDict[SeriesKey, Series] = OrderedDict()
        self._host = socket.gethostname()

    async def post(self, reference: Mapping[str, Any], events: Iterable[Event]) -> None:
        """Post them together (a new demo has one per child); a lost event is logged."""
        await asyncio.gather(*(self._record(reference, item) for item in events))

    def _series_of(self, key: SeriesKey) -> Series:
        """The live series of `key`, moved to the end; the ones whose window closed are dropped
        (they sit at the front, being the least recently repeated)."""
        now = self._clock()
        while self._series:
            oldest = next(iter(self._series.values()))
            if now - oldest.last <= SERIES_SECONDS:
                break
            self._series.popitem(last=False)
        series = self._series.pop(key, None) or Series(now)
        series.last = now
        self._series[key] = series
        return series

    async def _record(self, reference: Mapping[str, Any], item: Event) -> None:
        key = (reference["metadata"]["uid"], item.type, item.reason, item.message)
        series = self._series_of(key)
        async with series.lock:
            series.count += 1
            try:
                if series.name is not None and await self._count(reference, series.name, series):
                    return
                series.count = 1
                series.name = await self._create(reference, item)
            except ApiException as error:
                reason = error.reason
                logger.warning("event %s %s not posted: %s", item.reason, item.message, reason)

    async def _create(self, reference: Mapping[str, Any], item: Event) -> str:
        stamp = self._stamp()
        manifest = event(reference, item.type, item.reason, item.message, self._host, stamp)
        created = await self._kube.create(manifest)
        return str(created["metadata"]["name"])

    async def _count(self, reference: Mapping[str, Any], name: str, series: Series) -> bool:
        """Count a repeat on the posted event; False when that event is gone (events expire)."""
        patch = {"count": series.count, "lastTimestamp": self._stamp()}
        try:
            await self._kube.patch_event(reference["metadata"]["namespace"], name, patch)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True
