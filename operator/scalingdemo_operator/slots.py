"""A bound on work running at a time that hands free slots to urgent work first, never starving
the rest.

asyncio's Semaphore wakes its waiters in arrival order. When many new demos are applied at once,
the rollouts of the first ones send Deployment status updates whose reconciles then queue among
the new demos' and make the later new demos wait (controller-runtime's priority queue puts its
resync behind new objects for the same reason). Here a waiter is urgent or routine: a free slot
goes to the longest-waiting urgent one, except that after `urgent_streak` urgent grants in a row
while a routine one waited, the longest-waiting routine one gets the next slot. A routine waiter
therefore waits for at most `urgent_streak` urgent ones per routine one ahead of it, however many
urgent ones keep arriving. The semaphores and capacity limiters of asyncio, anyio and aiologic
take no priority, and no kept-up package for asyncio was found that does.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class PrioritySlots:
    """At most `capacity` holders at a time; urgent waiters first, routine ones not starved."""

    def __init__(self, capacity: int, urgent_streak: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        if urgent_streak < 1:
            raise ValueError(f"urgent_streak must be at least 1, not {urgent_streak}")
        self._free = capacity
        self._urgent_streak = urgent_streak
        self._streak = 0
        """Urgent grants in a row while a routine waiter waited."""
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._routine: collections.deque[asyncio.Future[None]] = collections.deque()

    @asynccontextmanager
    async def hold(self, *, urgent: bool) -> AsyncIterator[None]:
        """One slot for the body of the `async with`; waits in line for it when none is free."""
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    @property
    def waiting(self) -> int:
        return len(self._urgent) + len(self._routine)

    async def _acquire(self, urgent: bool) -> None:
        # A slot is only ever free while nobody waits (a release hands it on at once).
        if self._free > 0:
            self._free -= 1
            return
        line = self._urgent if urgent else self._routine
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if not turn.cancelled():
                self._release()  # granted, but cancelled before it could run: hand it on
            elif turn in line:
                line.remove(turn)
            raise

    def _release(self) -> None:
        """Hand the slot to the next waiter; one cancelled while still in line is passed over."""
        self._free += 1
        while self._free > 0 and (turn := self._next()) is not None:
            if not turn.done():
                self._free -= 1
                turn.set_result(None)

    def _next(self) -> asyncio.Future[None] | None:
        if self._urgent and (not self._routine or self._streak < self._urgent_streak):
            self._streak = self._streak + 1 if self._routine else 0
            return self._urgent.popleft()
        self._streak = 0
        return self._routine.popleft() if self._routine else None
