"""The I/O steps of one idempotent reconcile: read, apply, prune, topics, write status.

Level-based: every call compares the whole desired state with what exists, whatever triggered it
(a spec change, an operator restart, a child that was edited or deleted). Nothing is written when
nothing differs, so steady state costs only reads. What the steps learn goes to the pure
`assess`, which decides the status and the events; posting them, locking and retrying are the
reconciler's business.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from . import metrics
from .api import (
    API_VERSION,
    CHILD_KINDS,
    KAFKA_TOPIC,
    KIND,
    Event,
    Listing,
    Manifest,
    Outcome,
    Owner,
    is_paused,
    ownership_selector,
)
from .assess.status import Assessment, Failure, Observation, assess, invalid, paused, scaler_of
from .builders import desired_children
from .diff import needs_apply
from .kafka.reconcile import reconcile_topics
from .kube import ApiException, Kube, is_transient
from .spec import ScalingDemoSpec, SpecError, parse

MAX_LISTED_CHANGES = 6
STATUS_ATTEMPTS = 3
"""Status patches refused only because the metadata moved on are sent again this often."""


def now() -> str:
    """UTC in the API's timestamp format (conditions, events)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def reconcile(kube: Kube, owner: Owner) -> Outcome:
    """Reconcile one ScalingDemo as it is now; nothing when it is gone or being deleted.

    The object is read here, not taken from the trigger: a trigger that waited may carry a body
    from before the previous reconcile's status write, and acting on it would repeat that work.
    """
    body = await kube.get(API_VERSION, KIND, owner.namespace, owner.name)
    if body is None or body["metadata"]["uid"] != owner.uid:
        return Outcome([])
    if body["metadata"].get("deletionTimestamp"):
        return Outcome([])
    with metrics.RECONCILE_DURATION.time():
        try:
            assessment = await _reconcile(kube, owner, body)
        except Exception:
            metrics.RECONCILES.labels("error").inc()
            raise
    metrics.RECONCILES.labels(assessment.result).inc()
    return Outcome(assessment.events, assessment.retry)


async def _reconcile(kube: Kube, owner: Owner, body: Mapping[str, Any]) -> Assessment:
    """Children, topics and status; with the demo paused, only the status saying so (once)."""
    if is_paused(body):
        assessment = paused(body, now())
        await _write_status(kube, owner, body, assessment.status)
        return assessment
    try:
        spec = parse(body.get("spec") or {})
    except SpecError as error:
        assessment = invalid(body, str(error), now())
    else:
        assessment = assess(await _observe(kube, owner, spec, body), now())
    await _write_status(kube, owner, body, assessment.status)
    return assessment


async def _observe(
    kube: Kube, owner: Owner, spec: ScalingDemoSpec, body: Mapping[str, Any]
) -> Observation:
    """Apply the children and reconcile the topics.

    Topics on the broker are reconciled alongside the children, not after them: the new pods
    should find their topics created with the spec's size, not race a broker that auto-creates
    missing topics with its default size. A slow or unreachable broker does not delay the
    children either way.
    """
    strimzi = None
    if spec.kafka.topic_management == "Strimzi":
        strimzi = await kube.served_version(KAFKA_TOPIC.group, KAFKA_TOPIC.versions)
    tolerance = None
    if any(spec.component(name).autoscaling.sets_tolerance for name in spec.autoscaled()):
        tolerance = await kube.keeps_hpa_tolerance(owner.namespace)
    if spec.kafka.topic_management != "Operator":
        events, observed, failures = await _apply_children(kube, owner, spec, strimzi)
        return Observation(
            owner, spec, body, observed, failures, events, strimzi=strimzi, tolerance=tolerance
        )
    topics = asyncio.create_task(reconcile_topics(kube, owner, spec))
    try:
        events, observed, failures = await _apply_children(kube, owner, spec, strimzi)
    except BaseException:
        topics.cancel()
        raise
    return Observation(
        owner, spec, body, observed, failures, events, await topics, tolerance=tolerance
    )


def _listed_kinds(strimzi: str | None) -> list[tuple[str, str]]:
    """(apiVersion, kind) of every child kind to list; a served kind only in its found version."""
    return [
        (child.api_version(strimzi if child.listing is Listing.SERVED else None), child.kind)
        for child in CHILD_KINDS
        if child.listing is Listing.OWNED or strimzi is not None
    ]


def _describe(manifest: Mapping[str, Any]) -> str:
    return f"{manifest['kind']} {manifest['metadata']['name']}"


def _api_message(error: ApiException) -> str:
    """The API server's own explanation (it names the invalid field) rather than a dump."""
    try:
        message: str = json.loads(error.body or "")["message"]
    except (TypeError, ValueError, KeyError):
        return f"HTTP {error.status}: {error.reason}"
    return message


async def _apply_children(
    kube: Kube, owner: Owner, spec: ScalingDemoSpec, strimzi: str | None
) -> tuple[list[Event], list[Manifest], list[Failure]]:
    """Apply what differs, delete what is no longer wanted; report events, objects, failures.

    KafkaTopics are one per topic role, always wanted while they are listed, so never pruned:
    deleting one would make Strimzi delete the topic and its data.
    """
    listed = await kube.list_children(owner, ownership_selector(owner), _listed_kinds(strimzi))
    live = {(item["kind"], item["metadata"]["name"]): item for item in listed}
    events: list[Event] = []
    observed: list[Manifest] = []
    failures: list[Failure] = []
    for manifest in desired_children(spec, owner, strimzi):
        current = live.pop((manifest["kind"], manifest["metadata"]["name"]), None)
        changes = ["(missing)"] if current is None else needs_apply(manifest, current)
        if current is not None and not changes:
            observed.append(current)
            continue
        try:
            observed.append(await kube.apply(manifest))
        except ApiException as error:
            if is_transient(error):
                raise
            kind = manifest["kind"]
            missing = error.status == 404 and scaler_of(kind) is not None
            failures.append(Failure(kind, f"{_describe(manifest)}: {_api_message(error)}", missing))
            continue
        events.append(_change_event(manifest, None if current is None else changes))
    for leftover in live.values():
        await kube.delete(leftover)
        message = f"Deleted {_describe(leftover)}: the spec no longer wants it"
        events.append(Event("Normal", "Deleted", message))
    return events, observed, failures


def _change_event(manifest: Manifest, changes: list[str] | None) -> Event:
    """Created, or Updated naming the first changed paths (None: the child did not exist)."""
    if changes is None:
        return Event("Normal", "Created", f"Created {_describe(manifest)}")
    listed = ", ".join(changes[:MAX_LISTED_CHANGES])
    more = len(changes) - MAX_LISTED_CHANGES
    suffix = f" and {more} more" if more > 0 else ""
    return Event("Normal", "Updated", f"Updated {_describe(manifest)}: {listed}{suffix}")


async def _write_status(
    kube: Kube, owner: Owner, body: Mapping[str, Any], status: Mapping[str, Any]
) -> None:
    """Patch only what changed; None removes a field (merge-patch semantics).

    The patch carries the resourceVersion that was read, so a status computed from an outdated
    object is refused (409). When only the object's metadata changed since (kopf records what
    it handled in annotations), the status is still right and is sent again with the new
    version; when the spec or the status changed, the conflict goes up and the reconcile runs
    again from a fresh read.
    """
    previous = body.get("status") or {}
    patch = {key: value for key, value in status.items() if previous.get(key) != value}
    if not patch:
        return
    read = body
    for _ in range(STATUS_ATTEMPTS):
        try:
            await kube.patch_status(owner, patch, read["metadata"].get("resourceVersion"))
            return
        except ApiException as error:
            if error.status != 409:
                raise
            fresh = await kube.get(API_VERSION, KIND, owner.namespace, owner.name)
            if fresh is None or not _same_basis(fresh, body):
                raise
            read = fresh
    await kube.patch_status(owner, patch, read["metadata"].get("resourceVersion"))


def _same_basis(fresh: Mapping[str, Any], read: Mapping[str, Any]) -> bool:
    """The same object, spec generation and status: what a status is computed from."""
    return all(
        fresh["metadata"].get(key) == read["metadata"].get(key) for key in ("uid", "generation")
    ) and (fresh.get("status") or {}) == (read.get("status") or {})
