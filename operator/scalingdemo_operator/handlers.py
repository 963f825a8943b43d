"""kopf wiring only: which events call the reconcile, and the operator's startup settings.

Drift repair is mostly event-driven: the operator watches the children whose kind is marked
`watched` in `api.CHILD_KINDS` and reconciles their ScalingDemo whenever one is edited or
deleted (a ScaledObject also when KEDA changes its Ready condition). kopf serves the KEDA,
VPA and ServiceMonitor watches only while their CRDs exist.
A periodic resync of every ScalingDemo repairs the rest. It is one operator-wide task, not a
kopf timer: kopf puts a finalizer on every object that has a timer, and a finalizer is reserved
for external state (DESIGN.md): deleting a demo must not depend on the operator running.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterable, Mapping
from typing import Any

import kopf
import prometheus_client
from kubernetes.client.exceptions import ApiException

from .api import CHILD_KINDS, FIELD_MANAGER, GROUP, MANAGED, PLURAL, VERSION, Owner
from .builders.common import event
from .kube import Kube, client_from_environment
from .reconcile import now, reconcile, reconcile_owner_of, resync
from .status import Event, Outcome
from .topic_sync import DELETE_ATTEMPTS, delete_topics

RETRY_BACKOFF_SECONDS = 10
MAX_BACKOFF_SECONDS = 300
logger = logging.getLogger(__name__)
IGNORED_CHILD_EVENTS = frozenset({None, "ADDED"})
"""None is kopf's initial listing (on.resume reconciles every demo anyway); ADDED is a child the
reconcile itself just created. Edits (MODIFIED, including the Deployment's status) and deletions
are what need a reconcile."""


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Own annotation names and finalizer, explicit events only, metrics server, API client."""
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = FIELD_MANAGER
    settings.posting.reporting_instance = socket.gethostname()
    if memo.get("metrics_port") is not None:
        prometheus_client.start_http_server(memo["metrics_port"], addr=memo["metrics_address"])
    memo["kube"] = Kube(client_from_environment())
    if memo.get("resync_seconds"):
        memo["resync"] = asyncio.create_task(_resync_periodically(memo))


async def _resync_periodically(memo: kopf.Memo) -> None:
    while True:
        await asyncio.sleep(memo["resync_seconds"])
        try:
            for reference, events in await resync(memo["kube"], memo["namespaces"]):
                await _post(memo["kube"], reference, events)
        except Exception:
            logger.exception(
                "periodic resync failed; the next one is due in %ss", memo["resync_seconds"]
            )


@kopf.on.cleanup()
async def stop_resync(memo: kopf.Memo, **_: Any) -> None:
    if "resync" in memo:
        memo["resync"].cancel()


async def _post(kube: Kube, reference: Mapping[str, Any], events: Iterable[Event]) -> None:
    """Post through the API client rather than kopf.event, which works only inside a kopf
    handler: the periodic resync has events to post too. A lost event is logged, never fatal."""
    for item in events:
        manifest = event(
            reference, item.type, item.reason, item.message, socket.gethostname(), now()
        )
        try:
            await kube.create(manifest)
        except ApiException as error:
            logger.warning("event %s %s not posted: %s", item.reason, item.message, error.reason)


def _backoff(retry: int) -> float:
    """Exponential, capped: a broker that is down for long is not hammered."""
    return min(RETRY_BACKOFF_SECONDS * 2**retry, MAX_BACKOFF_SECONDS)


async def _post_or_retry(
    kube: Kube, body: kopf.Body, outcome: Outcome, retry: int, why: str
) -> None:
    await _post(kube, body, outcome.events)
    if outcome.retry:
        raise kopf.TemporaryError(why, delay=_backoff(retry))


@kopf.on.resume(GROUP, VERSION, PLURAL, backoff=RETRY_BACKOFF_SECONDS)
@kopf.on.create(GROUP, VERSION, PLURAL, backoff=RETRY_BACKOFF_SECONDS)
@kopf.on.update(GROUP, VERSION, PLURAL, backoff=RETRY_BACKOFF_SECONDS)
async def reconcile_demo(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    outcome = await reconcile(memo["kube"], Owner.from_body(body))
    await _post_or_retry(
        memo["kube"], body, outcome, retry, "Kafka could not be used; see condition TopicsReady"
    )


def _deletes_topics(spec: kopf.Spec, **_: Any) -> bool:
    """Only demos whose topics the operator deletes get a finalizer (kopf adds it by this)."""
    kafka = spec.get("kafka", {})
    return (
        kafka.get("deletionPolicy") == "Delete"
        and kafka.get("topicManagement", "Operator") == "Operator"
    )


@kopf.on.delete(GROUP, VERSION, PLURAL, when=_deletes_topics)
async def delete_demo_topics(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    owner = Owner.from_body(body)
    attempts = memo.get("topic_delete_attempts", DELETE_ATTEMPTS)
    outcome = await delete_topics(memo["kube"], owner, body["spec"], retry, attempts)
    await _post_or_retry(memo["kube"], body, outcome, retry, "the topics could not be deleted yet")


async def child_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if type in IGNORED_CHILD_EVENTS:
        return
    outcome = await reconcile_owner_of(memo["kube"], body)
    if outcome is not None:
        await _post(memo["kube"], *outcome)


for _child in CHILD_KINDS:
    if _child.watched:
        kopf.on.event(
            group=_child.group, version=_child.version, plural=_child.plural, labels=MANAGED
        )(child_changed)
