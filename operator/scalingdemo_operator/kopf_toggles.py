"""kopf's toggle set, waking its waiters only when its state can have changed.

Until every watched object is indexed, kopf holds each object's worker in
`operator_indexed.wait_for(True)`: every object seen adds an "off" toggle to that set, and
drops it once indexed. kopf's own set wakes every waiting worker on each add and drop to check
a state that did not change, so a restart over N objects costs on the order of N² wake-ups.
1,000 demos are about 8,000 objects with their children, and a restarted operator spent 58% of
its event loop's time in those wake-ups during its 131-second catch-up (py-spy; see "A restart
with 1,000 demos" in docs/operator.md), and /healthz waited up to 5 s for an answer.

This set counts its toggles that are on, so its state is known without looking at each toggle,
and notifies its condition on an add or drop only when the state flips. Turning a toggle on or
off still notifies everyone, as kopf does: a toggle's own waiters wait on the set's condition.
kopf builds its sets through the module attribute `aiotoggles.ToggleSet`, so `install` puts
this class there before `kopf.run`; the class is kopf's own otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from kopf._cogs.aiokits import aiotoggles

logger = logging.getLogger(__name__)


class CountedToggle(aiotoggles.Toggle):
    """A toggle that tells its set when it is turned, so the set's count of "on" stays true."""

    def __init__(self, state: bool, *, name: str | None, owner: CountingToggleSet) -> None:
        super().__init__(state, name=name, condition=owner.condition)
        self._owner = owner

    async def turn_to(self, __state: bool) -> None:
        async with self._condition:
            self._owner.turned(self, bool(__state))
            self._state = bool(__state)
            self._condition.notify_all()


class CountingToggleSet(aiotoggles.ToggleSet):
    """kopf's ToggleSet for `all` and `any` with the state kept as a count; any other
    function is left to kopf's own computation."""

    def __init__(self, fn: Callable[[Iterable[bool]], bool]) -> None:
        super().__init__(fn)
        self._on = 0

    @property
    def condition(self) -> asyncio.Condition:
        return self._condition

    def is_on(self) -> bool:
        if self._fn is all:
            return self._on == len(self._toggles)
        if self._fn is any:
            return self._on > 0
        return super().is_on()

    def turned(self, toggle: CountedToggle, state: bool) -> None:
        """Called by `toggle` under the condition's lock, before its state changes."""
        if toggle in self._toggles:
            self._on += int(state) - int(toggle.is_on())

    async def make_toggle(self, __val: bool = False, *, name: str | None = None) -> CountedToggle:
        toggle = CountedToggle(__val, name=name, owner=self)
        await self._update(added=(toggle,))
        return toggle

    async def drop_toggle(self, toggle: aiotoggles.Toggle) -> None:
        await self._update(dropped=(toggle,))

    async def drop_toggles(self, toggles: Iterable[aiotoggles.Toggle]) -> None:
        await self._update(dropped=tuple(toggles))

    async def _update(
        self,
        added: tuple[aiotoggles.Toggle, ...] = (),
        dropped: tuple[aiotoggles.Toggle, ...] = (),
    ) -> None:
        async with self._condition:
            before = self.is_on()
            for toggle in dropped:
                if toggle in self._toggles:
                    self._toggles.discard(toggle)
                    self._on -= int(toggle.is_on())
            for toggle in added:
                if toggle not in self._toggles:
                    self._toggles.add(toggle)
                    self._on += int(toggle.is_on())
            if self.is_on() != before:
                self._condition.notify_all()


def install() -> bool:
    """Have kopf build its toggle sets from `CountingToggleSet`; False, with a warning, when
    this kopf's set is not the one this class was written against (kopf's stays then)."""
    probe = aiotoggles.ToggleSet(all)
    if not all(hasattr(probe, name) for name in ("_condition", "_toggles", "_fn")):
        logger.warning("kopf's ToggleSet has changed: its wake-ups stay as kopf makes them")
        return False
    aiotoggles.ToggleSet = CountingToggleSet  # type: ignore[misc]
    return True
