"""kopf wiring only: which events reach the reconciler, and kopf's own settings.

Drift repair is mostly event-driven: the operator watches the children whose kind is marked
`watched` in `api.CHILD_KINDS` and reconciles their ScalingDemo whenever one is edited or
deleted (a ScaledObject also when KEDA changes its Ready condition). kopf serves the KEDA,
VPA and ServiceMonitor watches only while their CRDs exist. The reconciler's periodic resync
repairs the rest. Every trigger goes through the same reconciler, so a retry asked for by any
of them is honoured the same way; no reconcile handler raises for kopf to retry.

The reconcile reads from memory: kopf feeds an index (`@kopf.index`) of the ScalingDemos, of
every child kind, of the add-ons' CRDs and of the Secrets labelled as Kafka credentials from the
same watches, and the startup handler binds them into the `cache.Cache`. The API server filters
the watches of the children and of the Secrets by label, so nothing else is sent. kopf holds
back every resource handler until all indexes have finished their initial listing; the handler
on the ScalingDemo CRD's own event therefore runs only then, and marks the cache complete for
the reconciler's own tasks (resync, retries).

kopf hands every handler the `Operator` given to `kopf.run` as `memo` (a shallow copy per
object: the settings, the API access, the cache and the reconciler are shared).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
import prometheus_client

from .api import (
    CHILD_KINDS,
    CREDENTIALS_LABEL,
    FIELD_MANAGER,
    GROUP,
    INSTANCE_LABEL,
    MANAGED,
    PLURAL,
    VERSION,
    Listing,
    Owner,
    is_paused,
)
from .assess.status import says_paused
from .cache import ADD_ON_CRDS, Cache, child_key, crd_facts, demo_key, trimmed
from .kafka.reconcile import delete_topics
from .kube import Kube
from .reconciler import Reconciler
from .scaling_status import ScalingStatus
from .settings import Settings

IGNORED_CHILD_EVENTS = frozenset({None, "ADDED"})
"""None is kopf's initial listing (its creation handler reconciles every demo then anyway);
ADDED is a child the reconcile itself just created. Edits (MODIFIED, including the Deployment's
status) and deletions are what need a reconcile."""


class MemoryDiffBaseStorage(kopf.DiffBaseStorage):
    """kopf's record of the configuration it last handled, kept in memory, never on the demo.

    kopf's own storages patch the record onto the object after every change it handled: one
    more request per change, which also moves the demo's resourceVersion while the reconcile
    that change started may still be writing its status (refused with 409 and sent again), and
    a write to a demo the user paused. The reconcile compares the whole desired state whatever
    triggered it, so the record only has to say which events are changes: after a restart none
    is known, kopf calls every demo's creation handler, and that is the same reconcile as on
    resume. Annotations under the group's prefix (the pause, and the records older versions
    left) are no change to the configuration: the pause has its own handler.
    """

    def __init__(self) -> None:
        super().__init__()
        self._handled: dict[str, kopf.BodyEssence] = {}

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        essence = super().build(body=body, extra_fields=extra_fields)
        annotations = essence.get("metadata", {}).get("annotations", {})
        for key in [key for key in annotations if key.startswith(f"{GROUP}/")]:
            del annotations[key]
        self.remove_empty_stanzas(essence)
        return essence

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return self._handled.get(body.metadata.uid or "")

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        self._handled[body.metadata.uid or ""] = essence

    def forget(self, uid: str) -> None:
        """The demo is gone: nothing of it is kept."""
        self._handled.pop(uid, None)


class UnmarkedProgressStorage(kopf.AnnotationsProgressStorage):
    """kopf's record of a handler's progress (the topic finalizer's retries) in annotations,
    without the marker annotation kopf adds the first time it stores a record.

    kopf stores and purges the record of a handler that succeeds at once within one patch,
    which then holds nothing but that marker: one more write per new demo, which moves its
    resourceVersion while the reconcile writes its status. The marker only tells kopf's
    annotation diff-base storage to leave annotations under the prefix out of its diff, and
    `MemoryDiffBaseStorage` does that by itself.
    """

    def _store_marker(self, prefix: str, patch: kopf.Patch, body: kopf.Body) -> None:
        """No marker (see the class docstring)."""


@dataclass(frozen=True)
class Operator:
    """What the handlers share: passed to kopf as `memo`."""

    settings: Settings
    kube: Kube
    cache: Cache
    reconciler: Reconciler
    scaling: ScalingStatus
    handled: MemoryDiffBaseStorage = field(default_factory=MemoryDiffBaseStorage)


CRDS = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
"""group, version, plural"""
OWN_CRD = f"{PLURAL}.{GROUP}"
DEMO_INDEX = "demos"
CRD_INDEX = "add_on_crds"
SECRET_INDEX = "kafka_credentials"
SECRETS = ("", "v1", "secrets")
"""group, version, plural"""
CREDENTIALS = {CREDENTIALS_LABEL: "true"}


def _child_index(kind: str) -> str:
    return f"children_{kind}"


def _selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in labels.items())


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: Operator, **indices: Any) -> None:
    """Own annotation names and finalizer, explicit events only, timeouts, metrics, resync,
    and the cache bound to kopf's indexes (empty until the watches fill them)."""
    ours = memo.settings
    memo.cache.bind(
        indices[DEMO_INDEX],
        {child.kind: indices[_child_index(child.kind)] for child in CHILD_KINDS},
        indices[CRD_INDEX],
        indices[SECRET_INDEX],
    )
    # The API server filters these watches: no other Secret, and no Deployment, Service or
    # ConfigMap of someone else's, is ever sent to the operator.
    settings.watching.label_selectors[SECRETS[1], SECRETS[2]] = _selector(CREDENTIALS)
    for child in CHILD_KINDS:
        settings.watching.label_selectors[child.group, child.plural] = _selector(MANAGED)
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = UnmarkedProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = memo.handled
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = FIELD_MANAGER
    settings.posting.reporting_instance = socket.gethostname()
    # Bounded watches and requests: a silently dropped connection is noticed and reopened.
    settings.watching.server_timeout = ours.watch_server_seconds
    settings.watching.client_timeout = ours.watch_client_seconds
    settings.watching.connect_timeout = ours.connect_seconds
    settings.networking.request_timeout = ours.request_seconds
    settings.networking.connect_timeout = ours.connect_seconds
    if ours.metrics_port is not None:
        prometheus_client.start_http_server(ours.metrics_port, addr=ours.metrics_address)
    memo.reconciler.start_resync()


@kopf.on.cleanup()
async def stop(memo: Operator, **_: Any) -> None:
    memo.reconciler.stop()


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
async def reconcile_demo(body: kopf.Body, memo: Operator, **_: Any) -> None:
    await memo.reconciler.reconcile(Owner.from_body(body))


def _pause_unanswered(body: kopf.Body, **_: Any) -> bool:
    """The paused annotation and the status's Paused condition disagree.

    The configuration kopf compares leaves out every annotation under the group's prefix
    (`MemoryDiffBaseStorage`), so setting or removing the paused annotation calls no update
    handler; the status tells whether the operator has answered it yet.
    """
    return is_paused(body) != says_paused(body.get("status", {}))


@kopf.on.event(group=GROUP, version=VERSION, plural=PLURAL, when=_pause_unanswered)
async def answer_pause(type: str | None, body: kopf.Body, memo: Operator, **_: Any) -> None:
    if type != "DELETED":
        await memo.reconciler.reconcile(Owner.from_body(body), coalesce=True)


def _gone(type: str | None, **_: Any) -> bool:
    return type == "DELETED"


@kopf.on.event(group=GROUP, version=VERSION, plural=PLURAL, when=_gone)
async def forget_demo(body: kopf.Body, memo: Operator, **_: Any) -> None:
    memo.handled.forget(body.metadata.uid or "")


def _deletes_topics(spec: kopf.Spec, **_: Any) -> bool:
    """Only demos whose topics the operator deletes get a finalizer (kopf adds it by this)."""
    kafka = spec.get("kafka", {})
    return bool(
        kafka.get("deletionPolicy") == "Delete"
        and kafka.get("topicManagement", "Operator") == "Operator"
    )


@kopf.on.delete(GROUP, VERSION, PLURAL, when=_deletes_topics)
async def delete_demo_topics(body: kopf.Body, memo: Operator, retry: int, **_: Any) -> None:
    """The finalizer's work, retried by kopf (it holds the deletion) on the same backoff."""
    owner = Owner.from_body(body)
    attempts = memo.settings.topic_delete_attempts
    outcome = await delete_topics(memo.cache, owner, body["spec"], retry, attempts)
    await memo.reconciler.post(owner.object_reference(), outcome.events)
    if outcome.retry:
        raise kopf.TemporaryError(
            "the topics could not be deleted yet", delay=memo.settings.retry_delay(retry)
        )


async def child_changed(type: str | None, body: kopf.Body, memo: Operator, **_: Any) -> None:
    if type not in IGNORED_CHILD_EVENTS:
        await memo.reconciler.child_changed(body)


@kopf.index(group=GROUP, version=VERSION, plural=PLURAL, id=DEMO_INDEX)
async def index_demo(body: kopf.Body, **_: Any) -> dict[Any, Any]:
    """The index functions are coroutines although they never wait: kopf runs plain functions
    in its thread pool, one hand-over per watch event of every demo and child."""
    return {demo_key(body): trimmed(body)}


async def index_child(body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {child_key(body): trimmed(body)}


@kopf.index(
    group=CRDS[0],
    version=CRDS[1],
    plural=CRDS[2],
    id=CRD_INDEX,
    when=lambda name, **_: name in ADD_ON_CRDS,
)
async def index_add_on_crd(body: kopf.Body, name: str, **_: Any) -> dict[Any, Any]:
    return {name: crd_facts(body)}


@kopf.index(
    group=SECRETS[0], version=SECRETS[1], plural=SECRETS[2], labels=CREDENTIALS, id=SECRET_INDEX
)
async def index_secret(body: kopf.Body, **_: Any) -> dict[Any, Any]:
    """Only the data of a Secret the user labelled as Kafka credentials: its metadata (even
    the last-applied annotation, which may repeat the data) is of no use."""
    return {(body.metadata.namespace, body.metadata.name): dict(body.get("data") or {})}


@kopf.on.event(group=SECRETS[0], version=SECRETS[1], plural=SECRETS[2], labels=CREDENTIALS)
async def credentials_changed(type: str | None, body: kopf.Body, memo: Operator, **_: Any) -> None:
    """A labelled Secret appeared, changed or went: the demos naming it connect anew (a Secret
    applied together with its demo may arrive after the demo's first reconcile)."""
    if type is None:
        return
    users = memo.cache.using_secret(body.metadata.namespace or "", body.metadata.name or "")
    await asyncio.gather(*(memo.reconciler.reconcile(owner, coalesce=True) for owner in users))


@kopf.on.event(group=CRDS[0], version=CRDS[1], plural=CRDS[2], field="metadata.name", value=OWN_CRD)
async def indexes_listed(memo: Operator, **_: Any) -> None:
    """kopf runs this only once every index has been listed (see the module docstring)."""
    memo.cache.listed()


CHILD_LABELS: dict[str, Any] = {**MANAGED, INSTANCE_LABEL: kopf.PRESENT}
for _child in CHILD_KINDS:
    # A kind whose version discovery chooses is watched in the version the cluster prefers.
    _version = None if _child.listing is Listing.SERVED else _child.version
    kopf.index(
        group=_child.group,
        version=_version,
        plural=_child.plural,
        labels=CHILD_LABELS,
        id=_child_index(_child.kind),
    )(index_child)
    if _child.watched:
        kopf.on.event(
            group=_child.group, version=_version, plural=_child.plural, labels=CHILD_LABELS
        )(child_changed)
