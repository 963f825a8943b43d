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
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from . import metrics
from .api import (
    CHILD_KINDS,
    KAFKA_TOPIC,
    ChildKind,
    Event,
    Listing,
    Manifest,
    Outcome,
    Owner,
    is_paused,
)
from .assess.status import (
    Assessment,
    Failure,
    Observation,
    assess,
    failed,
    invalid,
    paused,
    scaler_of,
)
from .builders import desired_children
from .cache import Basis, Cache
from .diff import needs_apply
from .kafka.reconcile import reconcile_topics
from .kube import ApiException, Kube, is_transient
from .spec import ScalingDemoSpec, SpecError, parse

logger = logging.getLogger(__name__)

MAX_LISTED_CHANGES = 6
STATUS_ATTEMPTS = 3
"""Status patches refused only because the metadata moved on are sent again this often."""
CONFLICT_WAIT_SECONDS = 5.0
"""How long a refused status patch waits for the watch to bring the write that refused it."""


def now() -> str:
    """UTC in the API's timestamp format (conditions, events)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def reconcile(kube: Kube, cache: Cache, owner: Owner, done: list[Event]) -> Outcome:
    """Reconcile one ScalingDemo as it is now; nothing when it is gone or being deleted.

    The object is read here, from the watched cache, not taken from the trigger: a trigger that
    waited may carry a body from before the previous reconcile's status write, and acting on it
    would repeat that work. Each child written is announced in `done` as soon as it is written:
    the write happened even if a later step fails, and the run after it will not repeat it.
    """
    body = cache.demo(owner)
    if body is None:
        return Outcome([])
    if body["metadata"].get("deletionTimestamp"):
        return Outcome([])
    with metrics.RECONCILE_DURATION.time():
        try:
            assessment = await _reconcile(kube, cache, owner, body, done)
        except Exception as error:
            if isinstance(error, ApiException) and error.status == 409:
                # The demo changed since it was read: the reconciler runs again at once.
                metrics.RECONCILES.labels("error").inc()
                raise
            logger.exception("reconcile of %s/%s failed", owner.namespace, owner.name)
            assessment = failed(body, _failure(error), now())
            await _write_status(kube, cache, owner, body, assessment.status)
    metrics.RECONCILES.labels(assessment.result).inc()
    return Outcome(assessment.events, assessment.retry)


def _failure(error: Exception) -> str:
    """What went wrong, the same words on every attempt, so a failure that persists is
    announced once."""
    if isinstance(error, ApiException):
        return f"request to the Kubernetes API failed: {_api_message(error)}"
    return f"unexpected {type(error).__name__}: {error}"


async def _reconcile(
    kube: Kube, cache: Cache, owner: Owner, body: Mapping[str, Any], done: list[Event]
) -> Assessment:
    """Children, topics and status; with the demo paused, only the status saying so (once)."""
    if is_paused(body):
        assessment = paused(body, now())
        await _write_status(kube, cache, owner, body, assessment.status)
        return assessment
    try:
        spec = parse(body.get("spec") or {})
    except SpecError as error:
        assessment = invalid(body, str(error), now())
    else:
        assessment = assess(await _observe(kube, cache, owner, spec, body, done), now())
    await _write_status(kube, cache, owner, body, assessment.status)
    return assessment


async def _observe(
    kube: Kube,
    cache: Cache,
    owner: Owner,
    spec: ScalingDemoSpec,
    body: Mapping[str, Any],
    done: list[Event],
) -> Observation:
    """Apply the children and reconcile the topics.

    Topics on the broker are reconciled alongside the children, not after them: the new pods
    should find their topics created with the spec's size, not race a broker that auto-creates
    missing topics with its default size. A slow or unreachable broker does not delay the
    children either way.
    """
    strimzi = None
    if spec.kafka.topic_management == "Strimzi":
        strimzi = cache.served_version(KAFKA_TOPIC)
    basis = (body["metadata"].get("generation"), strimzi)
    tolerance = None
    if any(spec.component(name).autoscaling.sets_tolerance for name in spec.autoscaled()):
        tolerance = await kube.keeps_hpa_tolerance(owner.namespace)
    if spec.kafka.topic_management != "Operator":
        observed, failures = await _children(kube, cache, owner, spec, basis, done)
        return Observation(
            owner, spec, body, observed, failures, strimzi=strimzi, tolerance=tolerance
        )
    topics = asyncio.create_task(reconcile_topics(cache, owner, spec))
    try:
        observed, failures = await _children(kube, cache, owner, spec, basis, done)
    except BaseException:
        topics.cancel()
        raise
    return Observation(owner, spec, body, observed, failures, await topics, tolerance=tolerance)


async def _children(
    kube: Kube,
    cache: Cache,
    owner: Owner,
    spec: ScalingDemoSpec,
    basis: Basis,
    done: list[Event],
) -> tuple[list[Manifest], list[Failure]]:
    """The children as the spec wants them, by the cheapest check that is still exact.

    When the spec's generation and the Strimzi version are those of the last reconcile that
    left every child as wanted, and every child still has the resourceVersion it had then,
    nothing can differ: building the manifests and comparing them field by field is skipped.
    Any change to a child, by anyone, moves its resourceVersion and brings the full check back.
    """
    strimzi = basis[1]
    live = cache.children(owner, _listed_kinds(strimzi))
    if cache.unchanged(owner, basis, live):
        return live, []
    events, observed, failures = await _apply_children(kube, cache, owner, spec, strimzi, live)
    done.extend(events)
    if not failures:
        cache.verified(owner, basis, observed)
    return observed, failures


def _listed_kinds(strimzi: str | None) -> list[ChildKind]:
    """Every child kind to compare and prune; a served kind only when a version is served."""
    return [child for child in CHILD_KINDS if child.listing is Listing.OWNED or strimzi is not None]


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
    kube: Kube,
    cache: Cache,
    owner: Owner,
    spec: ScalingDemoSpec,
    strimzi: str | None,
    listed: list[Manifest],
) -> tuple[list[Event], list[Manifest], list[Failure]]:
    """Apply what differs, delete what is no longer wanted; report events, objects, failures.
    The cache learns each write, so a reconcile right after this one does not repeat it.

    The applies and deletions go out together (they are independent objects), so a new demo
    waits for the slowest request rather than for the sum of them; events and observations keep
    the builders' order. KafkaTopics are one per topic role, always wanted while they are
    listed, so never pruned: deleting one would make Strimzi delete the topic and its data.
    """
    live = {(item["kind"], item["metadata"]["name"]): item for item in listed}
    steps = []
    for manifest in desired_children(spec, owner, strimzi):
        current = live.pop((manifest["kind"], manifest["metadata"]["name"]), None)
        changes = ["(missing)"] if current is None else needs_apply(manifest, current)
        steps.append(_apply_one(kube, cache, owner, manifest, current, changes))
    steps.extend(_delete_one(kube, cache, owner, leftover) for leftover in live.values())
    results = await asyncio.gather(*steps, return_exceptions=True)
    events: list[Event] = []
    observed: list[Manifest] = []
    failures: list[Failure] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        event, seen, failure = result
        events.extend([event] if event else [])
        observed.extend([seen] if seen else [])
        failures.extend([failure] if failure else [])
    return events, observed, failures


Step = tuple[Event | None, Manifest | None, Failure | None]
"""What applying or deleting one child gave: its event, the object observed, a failure."""


async def _apply_one(
    kube: Kube,
    cache: Cache,
    owner: Owner,
    manifest: Manifest,
    current: Manifest | None,
    changes: list[str],
) -> Step:
    if current is not None and not changes:
        return None, current, None
    try:
        applied = await kube.apply(manifest)
    except ApiException as error:
        if is_transient(error):
            raise
        kind = manifest["kind"]
        missing = error.status == 404 and scaler_of(kind) is not None
        return None, None, Failure(kind, f"{_describe(manifest)}: {_api_message(error)}", missing)
    cache.applied(owner, current, applied)
    return _change_event(manifest, None if current is None else changes), applied, None


async def _delete_one(kube: Kube, cache: Cache, owner: Owner, leftover: Manifest) -> Step:
    await kube.delete(leftover)
    cache.applied(owner, leftover, None)
    message = f"Deleted {_describe(leftover)}: the spec no longer wants it"
    return Event("Normal", "Deleted", message), None, None


def _change_event(manifest: Manifest, changes: list[str] | None) -> Event:
    """Created, or Updated naming the first changed paths (None: the child did not exist)."""
    if changes is None:
        return Event("Normal", "Created", f"Created {_describe(manifest)}")
    listed = ", ".join(changes[:MAX_LISTED_CHANGES])
    more = len(changes) - MAX_LISTED_CHANGES
    suffix = f" and {more} more" if more > 0 else ""
    return Event("Normal", "Updated", f"Updated {_describe(manifest)}: {listed}{suffix}")


async def _write_status(
    kube: Kube, cache: Cache, owner: Owner, body: Mapping[str, Any], status: Mapping[str, Any]
) -> None:
    """Patch only what changed; None removes a field (merge-patch semantics).

    The patch carries the resourceVersion that was read, so a status computed from an outdated
    object is refused (409). When only the object's metadata changed since (labels, annotations,
    kopf's finalizer: nothing the status is computed from), the status is still right and is
    sent again with the version the watch brings; when the spec or the status changed, or the
    watch brings nothing in time, the conflict goes up and the reconcile runs again. The cache
    learns the written object, so the next reconcile does not start from the body before this
    write should the watch not have brought it yet.
    """
    previous = body.get("status") or {}
    patch = {key: value for key, value in status.items() if previous.get(key) != value}
    if not patch:
        return
    read = body
    for attempt in range(STATUS_ATTEMPTS + 1):
        version = read["metadata"].get("resourceVersion")
        try:
            cache.wrote(owner, version, await kube.patch_status(owner, patch, version))
            return
        except ApiException as error:
            if error.status != 409 or attempt == STATUS_ATTEMPTS:
                raise
            fresh = await cache.newer(owner, version, CONFLICT_WAIT_SECONDS)
            if fresh is None or not _same_basis(fresh, body):
                raise
            read = fresh


def _same_basis(fresh: Mapping[str, Any], read: Mapping[str, Any]) -> bool:
    """The same object, spec generation and status: what a status is computed from."""
    return all(
        fresh["metadata"].get(key) == read["metadata"].get(key) for key in ("uid", "generation")
    ) and (fresh.get("status") or {}) == (read.get("status") or {})
