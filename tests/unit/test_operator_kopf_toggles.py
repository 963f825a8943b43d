"""The toggle set that replaces kopf's: the same states as kopf's own, and wake-ups only when
the state flips."""

from __future__ import annotations

import asyncio
import random

import pytest
from kopf._cogs.aiokits import aiotoggles
from scalingdemo_operator import kopf_toggles
from scalingdemo_operator.kopf_toggles import CountingToggleSet

pytestmark = pytest.mark.unit

KOPF_TOGGLE_SET = CountingToggleSet.__mro__[1]
"""kopf's own class, whether or not `install` has run in this process."""


async def test_an_all_set_is_on_when_empty_and_off_while_any_toggle_is_off() -> None:
    toggles = CountingToggleSet(all)
    assert toggles.is_on()

    first = await toggles.make_toggle(name="first")
    second = await toggles.make_toggle(True, name="second")
    assert toggles.is_off()

    await first.turn_to(True)
    assert toggles.is_on()

    await second.turn_to(False)
    await toggles.drop_toggle(second)
    assert toggles.is_on()
    assert len(toggles) == 1


async def test_an_any_set_is_off_when_empty_and_on_while_any_toggle_is_on() -> None:
    toggles = CountingToggleSet(any)
    assert toggles.is_off()

    first = await toggles.make_toggle()
    assert toggles.is_off()

    await first.turn_to(True)
    assert toggles.is_on()

    await toggles.drop_toggles([first])
    assert toggles.is_off()


async def test_waiters_of_the_set_and_of_a_toggle_are_woken() -> None:
    toggles = CountingToggleSet(all)
    blocker = await toggles.make_toggle(name="blocker")
    set_on = asyncio.create_task(toggles.wait_for(True))
    toggle_on = asyncio.create_task(blocker.wait_for(True))
    await asyncio.sleep(0)
    assert not set_on.done()
    assert not toggle_on.done()

    await blocker.turn_to(True)

    await asyncio.wait_for(asyncio.gather(set_on, toggle_on), timeout=1)


async def test_adding_and_dropping_toggles_wakes_nobody_until_the_state_flips() -> None:
    toggles = CountingToggleSet(all)
    notified = 0
    notify_all = toggles.condition.notify_all

    def counting() -> None:
        nonlocal notified
        notified += 1
        notify_all()

    toggles.condition.notify_all = counting  # type: ignore[method-assign]
    blocker = await toggles.make_toggle(name="blocker")
    waiters = [asyncio.create_task(toggles.wait_for(True)) for _ in range(50)]
    for index in range(200):
        await toggles.drop_toggle(await toggles.make_toggle(name=str(index)))
    assert notified == 1  # the blocker's arrival turned the empty set off

    await toggles.drop_toggle(blocker)

    await asyncio.wait_for(asyncio.gather(*waiters), timeout=1)
    assert notified == 2


@pytest.mark.parametrize("fn", [all, any])
async def test_the_state_is_kopfs_after_every_step_of_a_random_history(fn: object) -> None:
    ours, theirs = CountingToggleSet(fn), KOPF_TOGGLE_SET(fn)  # type: ignore[arg-type]
    pairs: list[tuple[aiotoggles.Toggle, aiotoggles.Toggle]] = []
    steps = random.Random(21)
    for _ in range(500):
        action = steps.choice(["make", "turn", "drop", "drop_many", "turn_dropped"])
        if action == "make" or not pairs:
            state = steps.random() < 0.5
            pairs.append((await ours.make_toggle(state), await theirs.make_toggle(state)))
        elif action == "turn":
            state = steps.random() < 0.5
            mine, kopfs = steps.choice(pairs)
            await mine.turn_to(state)
            await kopfs.turn_to(state)
        elif action == "drop":
            mine, kopfs = pairs.pop(steps.randrange(len(pairs)))
            await ours.drop_toggle(mine)
            await theirs.drop_toggle(kopfs)
        elif action == "drop_many":
            gone = [pairs.pop(steps.randrange(len(pairs))) for _ in range(min(3, len(pairs)))]
            await ours.drop_toggles(mine for mine, _ in gone)
            await theirs.drop_toggles(kopfs for _, kopfs in gone)
        else:
            mine, kopfs = steps.choice(pairs)
            await ours.drop_toggle(mine)
            await theirs.drop_toggle(kopfs)
            await mine.turn_to(not mine.is_on())  # a dropped toggle no longer counts
            await kopfs.turn_to(not kopfs.is_on())
            pairs.remove((mine, kopfs))
        assert ours.is_on() == theirs.is_on()
        assert len(ours) == len(theirs)


def test_install_makes_kopf_build_its_sets_from_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiotoggles, "ToggleSet", KOPF_TOGGLE_SET)

    assert kopf_toggles.install()
    assert kopf_toggles.install()  # a second call changes nothing

    assert aiotoggles.ToggleSet is CountingToggleSet
