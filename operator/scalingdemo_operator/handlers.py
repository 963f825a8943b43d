"""kopf wiring only: which events reach the reconciler, and kopf's own settings.

Drift repair is mostly event-driven: the operator watches the children whose kind is marked
`watched` in `api.CHILD_KINDS` and reconciles their ScalingDemo whenever one is edited or
deleted (a ScaledObject also when KEDA changes its Ready condition). kopf serves the KEDA,
VPA and ServiceMonitor watches only while their CRDs exist. The reconciler's periodic resync
repairs the rest. Every trigger goes through the same reconciler, so a retry asked for by any
of them is honoured the same way; no reconcile handler raises for kopf to retry.

kopf hands every handler the `Operator` given to `kopf.run` as `memo` (a shallow copy per
object: the settings, the API access and the reconciler are shared).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any

import kopf
import prometheus_client

from .api import CHILD_KINDS, FIELD_MANAGER, GROUP, MANAGED, PLURAL, VERSION, Owner
from .kafka.reconcile import delete_topics
from .kube import Kube
from .reconciler import Reconciler
from .scaling_status import ScalingStatus
from .settings import Settings

IGNORED_CHILD_EVENTS = frozenset({None, "ADDED"})
"""None is kopf's initial listing (on.resume reconciles every demo anyway); ADDED is a child the
reconcile itself just created. Edits (MODIFIED, including the Deployment's status) and deletions
are what need a reconcile."""


@dataclass(frozen=True)
class Operator:
    """What the handlers share: passed to kopf as `memo`."""

    settings: Settings
    kube: Kube
    reconciler: Reconciler
    scaling: ScalingStatus


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: Operator, **_: Any) -> None:
    """Own annotation names and finalizer, explicit events only, timeouts, metrics, resync."""
    ours = memo.settings
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
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
    outcome = await delete_topics(memo.kube, owner, body["spec"], retry, attempts)
    await memo.reconciler.post(owner.object_reference(), outcome.events)
    if outcome.retry:
        raise kopf.TemporaryError(
            "the topics could not be deleted yet", delay=memo.settings.retry_delay(retry)
        )


async def child_changed(type: str | None, body: kopf.Body, memo: Operator, **_: Any) -> None:
    if type not in IGNORED_CHILD_EVENTS:
        await memo.reconciler.child_changed(body)


for _child in CHILD_KINDS:
    if _child.watched:
        kopf.on.event(
            group=_child.group, version=_child.version, plural=_child.plural, labels=MANAGED
        )(child_changed)
