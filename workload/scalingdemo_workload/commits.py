"""Offset commits that run beside the processing, one request at a time, coalesced.

A commit is a round trip to the group coordinator. Waiting for one per fetch made a fast stream
of small fetches as slow as the round trip; sending one per fetch without waiting would pile
requests up behind a slow coordinator. So one commit is in flight at most, and the offsets
queued while it travels are merged (a partition's later offset replaces its earlier one) and go
out together as the next request. Requests leave in order, so a partition's committed offset
only moves forward.

Only offsets the caller hands in are committed: the caller hands in offsets of processed records
only, which keeps delivery at-least-once.
"""

import asyncio
from collections.abc import Awaitable, Callable

from aiokafka import TopicPartition

Offsets = dict[TopicPartition, int]


class CoalescedCommits:
    """Queues offsets and commits them in the background with `commit`.

    `commit` deals with Kafka's own failures (they only mean redelivery); anything else it
    raises is a bug and comes back out of the next `add` or `flush`.
    """

    def __init__(self, commit: Callable[[Offsets], Awaitable[None]]) -> None:
        self._commit = commit
        self._queued: Offsets = {}
        self._sending: asyncio.Task[None] | None = None

    def add(self, offsets: Offsets) -> None:
        """Queue `offsets`; they leave with the next request, started now unless one is in
        flight (its successor carries them)."""
        if not offsets:
            return
        self._queued.update(offsets)
        sending = self._sending
        if sending is None or sending.done():
            if sending is not None:
                sending.result()
            self._sending = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while self._queued:
            offsets, self._queued = self._queued, {}
            await self._commit(offsets)

    async def flush(self) -> None:
        """Return once everything queued so far (and anything queued meanwhile) was sent."""
        while (sending := self._sending) is not None:
            await asyncio.wait({sending})
            if self._sending is sending:
                self._sending = None
            sending.result()
