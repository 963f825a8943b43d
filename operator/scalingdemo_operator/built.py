"""The desired children of the demos reconciled lately, built once per spec generation.

A child's status change (a Deployment rolling out, an HPA's sync) moves its resourceVersion,
so the reconcile it triggers compares every desired manifest with the live children again,
although the spec did not change: building the manifests (the Grafana dashboard most of all)
was most of that reconcile's own CPU. The builders are pure functions of the spec, the demo's
identity and the Strimzi version in use (`builders.desired_children` reads nothing else: no
Secret, no setting, no other add-on's presence), and the spec is fixed by the demo's uid and
generation, so the manifests built for a uid are reused while its `Basis` (generation,
Strimzi version) stays the same.

Bounded: only the demos reconciled most recently keep theirs (a rollout's reconciles follow
the demo's own within seconds); a demo that is deleted is forgotten at once. The manifests are
shared between reconciles of the same demo, one at a time (the reconciler's lock); nothing
writes to them.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Collection
from typing import Any

from .api import Manifest

CAPACITY = 128
"""Demos whose manifests are kept: about 40 KiB each, 5 MiB in all at most."""

Basis = tuple[Any, ...]
"""What the desired children follow besides the owner: the spec's generation, the Strimzi
version in use."""


class BuiltChildren:
    """uid -> the basis and the manifests built for it, least recently used dropped first."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._built: collections.OrderedDict[str, tuple[Basis, list[Manifest]]] = (
            collections.OrderedDict()
        )

    def children(
        self, uid: str, basis: Basis, build: Callable[[], list[Manifest]]
    ) -> list[Manifest]:
        """The manifests built for `basis`, built now if the demo's last ones were for another
        (or were dropped); a basis without a generation is never reused."""
        kept = self._built.get(uid)
        if kept is not None and kept[0] == basis and basis[0] is not None:
            self._built.move_to_end(uid)
            return kept[1]
        manifests = build()
        self._built[uid] = (basis, manifests)
        self._built.move_to_end(uid)
        while len(self._built) > self._capacity:
            self._built.popitem(last=False)
        return manifests

    def forget(self, uid: str) -> None:
        self._built.pop(uid, None)

    def keep_only(self, uids: Collection[str]) -> None:
        """Forget every demo but these (the ones still watched)."""
        for uid in self._built.keys() - set(uids):
            del self._built[uid]

    def __len__(self) -> int:
        return len(self._built)
