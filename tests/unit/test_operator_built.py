"""The desired children are built once per spec generation and Strimzi version, and forgotten
with their demo."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from scalingdemo_operator import reconcile as reconcile_module
from scalingdemo_operator.api import CHILD_KINDS, Manifest, Owner
from scalingdemo_operator.built import BuiltChildren
from scalingdemo_operator.cache import Cache, CrdFacts, child_key, crd_name, trimmed
from scalingdemo_operator.spec import parse

from tests.unit.conftest import MINIMAL, OWNER

pytestmark = pytest.mark.unit

KEY = (OWNER.namespace, OWNER.name)


class Builds:
    """Counts the builds; each returns a fresh list so that reuse is visible by identity."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> list[Manifest]:
        self.count += 1
        return [{"kind": "ConfigMap", "build": self.count}]


def test_the_same_basis_reuses_what_was_built_and_another_builds_anew() -> None:
    built, builds = BuiltChildren(), Builds()
    first = built.children("uid", (1, None), builds)
    assert built.children("uid", (1, None), builds) is first
    assert built.children("uid", (2, None), builds) is not first  # the spec was edited
    assert built.children("uid", (2, "v1"), builds)[0]["build"] == 3  # Strimzi came
    assert builds.count == 3


def test_a_basis_without_a_generation_is_never_reused() -> None:
    built, builds = BuiltChildren(), Builds()
    built.children("uid", (None, None), builds)
    built.children("uid", (None, None), builds)
    assert builds.count == 2


def test_the_least_recently_used_demo_is_dropped_beyond_the_capacity() -> None:
    built, builds = BuiltChildren(capacity=2), Builds()
    built.children("a", (1, None), builds)
    built.children("b", (1, None), builds)
    built.children("a", (1, None), builds)  # used again: b is now the oldest
    built.children("c", (1, None), builds)
    assert len(built) == 2
    built.children("a", (1, None), builds)
    assert builds.count == 3
    built.children("b", (1, None), builds)
    assert builds.count == 4


def test_a_demo_gone_from_the_cache_takes_its_manifests_along() -> None:
    cache = Cache()
    demos: dict[Any, list[Manifest]] = {
        KEY: [{"metadata": {"namespace": OWNER.namespace, "name": OWNER.name, "uid": OWNER.uid}}]
    }
    cache.bind(demos, {}, {}, {})
    other = Owner(OWNER.namespace, "gone", "gone-uid")
    for owner in (OWNER, other):
        cache.built.children(owner.uid, (1, None), Builds())
    cache.owners()  # the resync's sweep: only OWNER is still watched
    assert len(cache.built) == 1
    demos.clear()
    assert cache.demo(OWNER) is None
    assert len(cache.built) == 0
    cache.built.children(OWNER.uid, (1, None), Builds())
    cache.forget(OWNER.uid)  # the DELETED event
    assert len(cache.built) == 0


class Cluster:
    """API access whose applies the cache's child indexes then show, as the watches would."""

    def __init__(self, cache: Cache) -> None:
        self.children: dict[str, dict[Any, list[Manifest]]] = {
            child.kind: {} for child in CHILD_KINDS
        }
        self.applies = 0
        cache.bind({}, self.children, self._crds(), {})

    @staticmethod
    def _crds() -> dict[str, list[CrdFacts]]:
        return {
            crd_name(child): [CrdFacts("", child.versions)]
            for child in CHILD_KINDS
            if child.add_on is not None
        }

    async def apply(self, manifest: Manifest) -> Manifest:
        self.applies += 1
        applied = copy.deepcopy(manifest)
        applied["metadata"].update(uid=f"uid-{applied['kind']}", resourceVersion="1")
        applied["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        siblings = self.children[applied["kind"]].setdefault(child_key(applied), [])
        siblings[:] = [item for item in siblings if item["metadata"]["name"] != _name(applied)]
        siblings.append(trimmed(applied))
        return applied

    def status_update(self, kind: str) -> None:
        """A controller updated the children's status: only their resourceVersions move here."""
        for item in self.children[kind][KEY]:
            item["metadata"]["resourceVersion"] = "2"


def _name(manifest: Manifest) -> str:
    name: str = manifest["metadata"]["name"]
    return name


async def test_a_child_status_update_is_compared_with_the_manifests_built_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Deployment's rollout moves its resourceVersion: the reconcile compares again, but
    with the manifests built for the same generation; an edit of the spec builds them anew."""
    builds = 0
    build = reconcile_module.desired_children

    def counting(*arguments: Any) -> list[Manifest]:
        nonlocal builds
        builds += 1
        return build(*arguments)

    monkeypatch.setattr(reconcile_module, "desired_children", counting)
    cache = Cache()
    cluster = Cluster(cache)
    spec = parse(MINIMAL)
    done: list[Any] = []
    await reconcile_module._children(cluster, cache, OWNER, spec, (1, None), done)  # type: ignore[arg-type]
    created = cluster.applies
    assert (builds, created) == (1, len(done))
    cluster.status_update("Deployment")
    observed, failures = await reconcile_module._children(
        cluster,  # type: ignore[arg-type]
        cache,
        OWNER,
        spec,
        (1, None),
        done,
    )
    assert (builds, cluster.applies, failures) == (1, created, [])
    assert len(observed) == created
    assert {item["metadata"]["resourceVersion"] for item in observed} == {"1", "2"}
    await reconcile_module._children(cluster, cache, OWNER, spec, (2, None), done)  # type: ignore[arg-type]
    assert builds == 2
