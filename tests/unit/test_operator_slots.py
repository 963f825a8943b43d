"""The slot limiter of the reconciles: urgent work first, routine work never starved."""

from __future__ import annotations

import asyncio

import pytest
from scalingdemo_operator.slots import PrioritySlots

pytestmark = pytest.mark.unit


class Line:
    """Waiters queued behind one held slot, each recording its turn and leaving at once."""

    def __init__(self, slots: PrioritySlots) -> None:
        self.slots = slots
        self.order: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def _take(self, name: str, urgent: bool) -> None:
        async with self.slots.hold(urgent=urgent):
            self.order.append(name)

    async def join(self, name: str, *, urgent: bool) -> asyncio.Task[None]:
        task = asyncio.create_task(self._take(name, urgent))
        self.tasks.append(task)
        await asyncio.sleep(0)  # in line before the next one
        return task

    async def finish(self) -> list[str]:
        await asyncio.gather(*self.tasks, return_exceptions=True)
        return self.order


async def turns(urgent_streak: int, waiters: list[str]) -> list[str]:
    """The order in which `waiters` (urgent when named new-*) get the one slot, all of them in
    line before it is first released."""
    slots = PrioritySlots(capacity=1, urgent_streak=urgent_streak)
    line = Line(slots)
    async with slots.hold(urgent=False):
        for name in waiters:
            await line.join(name, urgent=name.startswith("new-"))
    return await line.finish()


async def test_urgent_waiters_go_before_routine_ones_that_came_earlier() -> None:
    waiters = ["routine-1", "new-1", "routine-2", "new-2"]
    assert await turns(10, waiters) == ["new-1", "new-2", "routine-1", "routine-2"]


async def test_a_routine_waiter_gets_a_slot_after_at_most_the_streak_of_urgent_ones() -> None:
    """However many urgent waiters there are, the routine ones get every third slot here."""
    waiters = ["routine-1", "routine-2", *(f"new-{index}" for index in range(6))]
    assert await turns(2, waiters) == [
        "new-0",
        "new-1",
        "routine-1",
        "new-2",
        "new-3",
        "routine-2",
        "new-4",
        "new-5",
    ]


async def test_urgent_waiters_arriving_all_the_time_do_not_starve_a_routine_one() -> None:
    slots = PrioritySlots(capacity=2, urgent_streak=3)
    order: list[str] = []
    done = asyncio.Event()

    async def urgent_forever(name: str) -> None:
        while not done.is_set():
            async with slots.hold(urgent=True):
                order.append(name)
                await asyncio.sleep(0)

    async def routine() -> None:
        async with slots.hold(urgent=False):
            order.append("routine")
            done.set()

    hogs = [asyncio.create_task(urgent_forever(f"new-{index}")) for index in range(4)]
    await asyncio.sleep(0)
    await asyncio.wait_for(routine(), timeout=5)
    await asyncio.gather(*hogs)
    assert order.index("routine") <= 2 + 3 + 4  # the first slots, one streak, the hogs in line


async def test_never_more_than_the_capacity_hold_a_slot() -> None:
    slots = PrioritySlots(capacity=3, urgent_streak=2)
    holding, most = 0, 0

    async def work(urgent: bool) -> None:
        nonlocal holding, most
        async with slots.hold(urgent=urgent):
            holding += 1
            most = max(most, holding)
            await asyncio.sleep(0.001)
            holding -= 1

    await asyncio.gather(*(work(index % 2 == 0) for index in range(20)))
    assert most == 3
    assert slots.waiting == 0


@pytest.mark.parametrize("granted", [False, True])
async def test_a_waiter_cancelled_before_it_ran_takes_no_slot_with_it(granted: bool) -> None:
    """Cancelled while still in line, or after the release that gave it its turn but before
    it ran: either way the slot goes to the next waiter."""
    slots = PrioritySlots(capacity=1, urgent_streak=2)
    line = Line(slots)
    async with slots.hold(urgent=True):
        cancelled = await line.join("cancelled", urgent=True)
        await line.join("next", urgent=False)
        if not granted:
            cancelled.cancel()
            await asyncio.sleep(0)
    if granted:
        cancelled.cancel()
    assert await line.finish() == ["next"]
    assert slots.waiting == 0
    async with asyncio.timeout(1), slots.hold(urgent=True):
        pass


@pytest.mark.parametrize(
    ("capacity", "streak", "named"), [(0, 1, "capacity"), (1, 0, "urgent_streak")]
)
def test_bad_bounds_name_the_parameter(capacity: int, streak: int, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        PrioritySlots(capacity=capacity, urgent_streak=streak)
