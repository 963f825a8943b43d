"""The watched cache: what a reconcile reads instead of LISTs and GETs."""

from __future__ import annotations

from typing import Any

import pytest
from scalingdemo_operator.api import CHILDREN, CREDENTIALS_LABEL, INSTANCE_LABEL, Owner
from scalingdemo_operator.cache import Cache, child_key, crd_facts, demo_key, trimmed

from tests.unit.conftest import AUTH, MINIMAL, OWNER

pytestmark = pytest.mark.unit

DEPLOYMENT, SCALED_OBJECT = CHILDREN["Deployment"], CHILDREN["ScaledObject"]
KEY = (OWNER.namespace, OWNER.name)


def _object(kind: str, name: str, owner_uid: str | None = None, **metadata: Any) -> dict[str, Any]:
    references = [{"kind": "ScalingDemo", "uid": owner_uid}] if owner_uid else []
    return {
        "kind": kind,
        "metadata": {
            "namespace": OWNER.namespace,
            "name": name,
            "labels": {INSTANCE_LABEL: OWNER.name},
            "ownerReferences": references,
            "creationTimestamp": "2026-01-01T00:00:10Z",
            **metadata,
        },
    }


def _crd(created: str, *served: str) -> dict[str, Any]:
    versions = [{"name": version, "served": True} for version in served]
    return {"metadata": {"creationTimestamp": created}, "spec": {"versions": versions}}


def _cache(
    children: dict[str, list[dict[str, Any]]],
    crds: dict[str, Any],
    secrets: dict[str, dict[str, str]] | None = None,
    spec: dict[str, Any] | None = None,
) -> Cache:
    cache = Cache()
    demo = {
        "metadata": {"namespace": OWNER.namespace, "name": OWNER.name, "uid": OWNER.uid},
        "spec": spec or {},
    }
    cache.bind(
        {KEY: [demo]},
        {kind: {KEY: items} for kind, items in children.items()},
        {name: [crd_facts(body)] for name, body in crds.items()},
        {(OWNER.namespace, name): [data] for name, data in (secrets or {}).items()},
    )
    return cache


def test_children_are_the_demos_own_or_unowned_and_never_another_objects() -> None:
    ours = _object("Deployment", "demo-api", OWNER.uid)
    unowned = _object("Deployment", "demo-kept")
    foreign = _object("Deployment", "demo-other", "someone-else")
    cache = _cache({"Deployment": [ours, unowned, foreign]}, {})
    assert cache.children(OWNER, [DEPLOYMENT]) == [ours, unowned]


def test_our_writes_stand_in_for_the_watched_versions_until_the_watch_moves_on() -> None:
    """A reconcile queued behind the one that wrote reads before the watch brings the write:
    it must see the write, or it applies the same change again and announces it twice."""
    old = _object("Deployment", "demo-api", OWNER.uid, resourceVersion="1")
    doomed = _object("Deployment", "demo-gone", OWNER.uid, resourceVersion="4")
    watched = [old, doomed]
    cache = _cache({"Deployment": watched}, {})
    updated = _object("Deployment", "demo-api", OWNER.uid, resourceVersion="2")
    created = _object("Deployment", "demo-worker", OWNER.uid, resourceVersion="3")
    cache.applied(OWNER, old, updated)
    cache.applied(OWNER, None, created)
    cache.applied(OWNER, doomed, None)
    assert cache.children(OWNER, [DEPLOYMENT]) == [updated, created]

    edited = _object("Deployment", "demo-api", OWNER.uid, resourceVersion="5")
    watched[:] = [edited, created, doomed]
    assert cache.children(OWNER, [DEPLOYMENT]) == [edited, created]
    watched.remove(doomed)
    assert cache.children(OWNER, [DEPLOYMENT]) == [edited, created]
    assert cache._children_written == {OWNER.uid: {}}


def test_an_update_stands_in_until_the_watch_brings_its_version_or_a_later_one() -> None:
    """Another client's write between our read and our apply reaches the watch after our
    apply was answered: it is older than our write and must not be taken for the child."""
    read = _object("Deployment", "demo-api", OWNER.uid, uid="a", resourceVersion="9")
    watched = [read]
    cache = _cache({"Deployment": watched}, {})
    ours = _object("Deployment", "demo-api", OWNER.uid, uid="a", resourceVersion="11")
    cache.applied(OWNER, read, ours)
    watched[:] = [_object("Deployment", "demo-api", OWNER.uid, uid="a", resourceVersion="10")]
    assert cache.children(OWNER, [DEPLOYMENT]) == [ours]
    later = _object("Deployment", "demo-api", OWNER.uid, uid="a", resourceVersion="12")
    watched[:] = [later]
    assert cache.children(OWNER, [DEPLOYMENT]) == [later]
    assert cache._children_written == {OWNER.uid: {}}


def test_a_deleted_child_stays_hidden_until_the_watch_drops_it_whatever_versions_arrive() -> None:
    """The Deployment controller's last status update can reach the watch after our deletion:
    showing the child again would make the next reconcile delete it, and announce it, twice."""
    doomed = _object("Deployment", "demo-api", OWNER.uid, uid="a", resourceVersion="4")
    watched = [doomed]
    cache = _cache({"Deployment": watched}, {})
    cache.applied(OWNER, doomed, None)
    watched[:] = [_object("Deployment", "demo-api", OWNER.uid, uid="a", resourceVersion="5")]
    assert cache.children(OWNER, [DEPLOYMENT]) == []
    again = _object("Deployment", "demo-api", OWNER.uid, uid="b", resourceVersion="6")
    watched[:] = [again]
    assert cache.children(OWNER, [DEPLOYMENT]) == [again]
    assert cache._children_written == {OWNER.uid: {}}


def test_an_add_on_child_counts_only_while_its_crd_exists_and_is_not_older_than_it() -> None:
    live = _object("ScaledObject", "demo-worker", OWNER.uid)
    stale = _object("ScaledObject", "demo-api", OWNER.uid, creationTimestamp="2026-01-01T00:00:01Z")
    children = {"ScaledObject": [live, stale]}
    assert _cache(children, {}).children(OWNER, [SCALED_OBJECT]) == []
    recreated = {"scaledobjects.keda.sh": _crd("2026-01-01T00:00:05Z", "v1alpha1")}
    assert _cache(children, recreated).children(OWNER, [SCALED_OBJECT]) == [live]


def test_the_served_version_is_the_first_preferred_one_the_crd_serves() -> None:
    topic = CHILDREN["KafkaTopic"]
    assert _cache({}, {}).served_version(topic) is None
    crds = {"kafkatopics.kafka.strimzi.io": _crd("2026-01-01T00:00:00Z", "v1beta2")}
    assert _cache({}, crds).served_version(topic) == "v1beta2"


def test_our_own_status_write_is_read_back_until_the_watch_brings_it() -> None:
    cache = _cache({}, {})
    (watched,) = list(cache._demos[KEY])
    watched["metadata"]["resourceVersion"] = "1"
    written = {**watched, "metadata": {**watched["metadata"], "resourceVersion": "2"}}
    cache.wrote(OWNER, "1", {**written, "status": {"observedGeneration": 1}})
    assert cache.demo(OWNER) == {**written, "status": {"observedGeneration": 1}}
    watched["metadata"]["resourceVersion"] = "3"  # the watch caught up and went further
    assert cache.demo(OWNER) is watched
    assert cache.demo(OWNER) is watched


def test_a_demo_is_unobserved_until_its_status_observed_its_generation() -> None:
    cache = _cache({}, {})
    (watched,) = list(cache._demos[KEY])
    watched["metadata"].update(generation=2, resourceVersion="1")
    assert cache.unobserved(OWNER)  # new: no status yet
    watched["status"] = {"observedGeneration": 1}
    assert cache.unobserved(OWNER)  # edited since
    watched["status"] = {"observedGeneration": 2}
    assert not cache.unobserved(OWNER)
    assert not cache.unobserved(Owner(OWNER.namespace, OWNER.name, "another-uid"))


def test_our_own_status_write_counts_as_observed_before_the_watch_brings_it() -> None:
    cache = _cache({}, {})
    (watched,) = list(cache._demos[KEY])
    watched["metadata"].update(generation=1, resourceVersion="1")
    written = {**watched, "metadata": {**watched["metadata"], "resourceVersion": "2"}}
    cache.wrote(OWNER, "1", {**written, "status": {"observedGeneration": 1}})
    assert not cache.unobserved(OWNER)
    assert cache.demo(OWNER) == {**written, "status": {"observedGeneration": 1}}


def test_a_demo_of_another_uid_under_the_same_name_is_not_ours() -> None:
    cache = _cache({}, {})
    (watched,) = list(cache._demos[KEY])
    watched["metadata"]["uid"] = "a-new-one"
    assert cache.demo(OWNER) is None


def test_index_entries_are_keyed_by_demo_and_drop_managed_fields() -> None:
    body = _object("Service", "demo-api", OWNER.uid, managedFields=[{"manager": "x"}])
    assert child_key(body) == KEY
    assert demo_key({"metadata": {"namespace": "team", "name": "demo"}}) == ("team", "demo")
    assert "managedFields" not in trimmed(body)["metadata"]
    assert "managedFields" in body["metadata"]


def test_children_unchanged_since_verified_need_no_check_and_any_change_brings_it_back() -> None:
    api = _object("Deployment", "demo-api", OWNER.uid, resourceVersion="5")
    worker = _object("Deployment", "demo-worker", OWNER.uid, resourceVersion="6")
    cache = _cache({}, {})
    basis = (1, None)
    assert not cache.unchanged(OWNER, basis, [api, worker])
    cache.verified(OWNER, basis, [api, worker])
    assert cache.unchanged(OWNER, basis, [worker, api])
    assert not cache.unchanged(OWNER, (2, None), [api, worker]), "the spec changed"
    assert not cache.unchanged(OWNER, basis, [api]), "a child is gone"
    edited = {**worker, "metadata": {**worker["metadata"], "resourceVersion": "7"}}
    assert not cache.unchanged(OWNER, basis, [api, edited]), "a child was edited"


def test_what_is_remembered_of_a_demo_goes_with_it() -> None:
    cache = _cache({}, {})
    gone = Owner(OWNER.namespace, "gone", "uid-gone")
    cache.verified(gone, (1, None), [])
    assert cache.owners() == [OWNER]
    assert not cache.unchanged(gone, (1, None), [])


def test_credentials_are_read_from_the_watched_secrets() -> None:
    cache = _cache({}, {}, {"kafka-user": {"username": "YWxpY2U=", "password": "czNjcmV0"}})
    values = cache.secret_values(OWNER.namespace, [("kafka-user", "username")])
    assert values == {("kafka-user", "username"): "alice"}
    with pytest.raises(LookupError, match="Secret team/kafka-user has no key token"):
        cache.secret_values(OWNER.namespace, [("kafka-user", "token")])


def test_a_secret_not_watched_is_named_with_the_label_that_would_let_the_operator_read_it() -> None:
    with pytest.raises(LookupError) as refused:
        _cache({}, {}).secret_values(OWNER.namespace, [("kafka-user", "username")])
    assert "Secret team/kafka-user" in str(refused.value)
    assert f"kubectl label secret -n team kafka-user {CREDENTIALS_LABEL}=true" in str(refused.value)


def test_a_secret_reaches_the_demos_of_its_namespace_that_name_it() -> None:
    spec = {**MINIMAL, "kafka": {**MINIMAL["kafka"], "auth": AUTH}}
    cache = _cache({}, {}, spec=spec)
    assert cache.using_secret(OWNER.namespace, "kafka-ca") == [OWNER]
    assert cache.using_secret(OWNER.namespace, "other") == []
    assert cache.using_secret("elsewhere", "kafka-ca") == []
    assert _cache({}, {}, spec={"image": 5}).using_secret(OWNER.namespace, "kafka-ca") == []
