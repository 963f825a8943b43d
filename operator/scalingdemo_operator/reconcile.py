"""One idempotent reconcile: desired children -> server-side apply, prune, status, events.

Level-based: every call compares the whole desired state with what exists, whatever triggered it
(a spec change, an operator restart, a child that was edited or deleted). Nothing is written when
nothing differs, so steady state costs only reads. Returns the events to post and whether to
try again soon; posting and retrying are the handlers' business.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import metrics
from .api import (
    API_VERSION,
    CHILD_KINDS,
    CHILDREN,
    KAFKA_TOPIC,
    KIND,
    AddOn,
    Listing,
    Manifest,
    Owner,
    controlling_owner,
    ownership_selector,
)
from .builders import autoscaling, desired_children, monitoring
from .builders.workload import endpoint
from .diff import needs_apply
from .kube import Kube, is_transient
from .spec import ScalingDemoSpec, SpecError, parse
from .status import (
    KEDA,
    MONITORING,
    READY,
    TOPICS_READY,
    VPA,
    Condition,
    Event,
    Outcome,
    Scaler,
    merge_conditions,
    ready_condition,
    replica_counts,
    scaling_condition,
    strimzi_topics_condition,
    workload_condition,
)
from .topic_sync import NOT_MANAGED, TopicsOutcome, reconcile_topics

MAX_LISTED_CHANGES = 6
COALESCE_SECONDS = 0.5
WARNING_REASONS = frozenset({"InvalidSpec", "ApplyFailed", KEDA.missing_reason, VPA.missing_reason})
"""Condition reasons that need a person: each new one is announced once with a Warning event."""
SCALER_OF_ADD_ON = {AddOn.KEDA: KEDA, AddOn.VPA: VPA, AddOn.PROMETHEUS_OPERATOR: MONITORING}
"""Add-ons reported in a condition of their own: their CRDs may be missing, which is reported,
not an error (Strimzi's absence is found by discovery and reported in TopicsReady)."""
NOTE_REASONS = {
    KEDA.condition: "ReplicasCappedByPartitions",
    VPA.condition: "VerticalScalingNarrowed",
}
"""Warning reasons for notes on a healthy AutoscalingReady / VerticalScalingReady."""

_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
_waiting: set[str] = set()
"""UIDs with a reconcile pending (coalescing or queued on the lock) that has not read yet."""


@dataclass(frozen=True)
class Failure:
    """A child that could not be applied; `missing` when its kind's CRD is not installed."""

    kind: str
    message: str
    missing: bool = False


def now() -> str:
    """UTC in the API's timestamp format (conditions, events)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(manifest: Mapping[str, Any]) -> str:
    return f"{manifest['kind']} {manifest['metadata']['name']}"


def _api_message(error: ApiException) -> str:
    """The API server's own explanation (it names the invalid field) rather than a dump."""
    try:
        return json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        return f"HTTP {error.status}: {error.reason}"


async def reconcile(kube: Kube, owner: Owner, *, coalesce: bool = False) -> Outcome:
    """Reconcile one ScalingDemo; concurrent triggers for the same object run one at a time.

    The object is read again inside the lock: a trigger that waited may carry a body from
    before the previous reconcile's status write, and acting on it would repeat that work.
    With `coalesce`, a trigger returns at once when another reconcile of the same object is
    pending (not yet reading): that one reads everything afresh, so it covers this trigger too.
    A coalescing trigger also waits COALESCE_SECONDS before it starts, so that the burst of
    Deployment status updates of a rollout becomes one pass instead of one pass per update.
    """
    if coalesce and owner.uid in _waiting:
        return Outcome([])
    lock = _locks.setdefault(owner.uid, asyncio.Lock())
    _waiting.add(owner.uid)
    try:
        if coalesce:
            await asyncio.sleep(COALESCE_SECONDS)
        async with lock:
            _waiting.discard(owner.uid)
            body = await kube.get(API_VERSION, KIND, owner.namespace, owner.name)
            if body is None or body["metadata"]["uid"] != owner.uid:
                return Outcome([])
            if body["metadata"].get("deletionTimestamp"):
                return Outcome([])
            with metrics.RECONCILE_DURATION.time():
                try:
                    outcome, result = await _reconcile(kube, owner, body)
                except Exception:
                    metrics.RECONCILES.labels("error").inc()
                    raise
    finally:
        _waiting.discard(owner.uid)
    metrics.RECONCILES.labels(result).inc()
    return outcome


async def reconcile_owner_of(
    kube: Kube, child: Mapping[str, Any]
) -> tuple[Manifest, list[Event]] | None:
    """A child changed or vanished: reconcile the ScalingDemo that controls it.

    Returns a reference to the ScalingDemo (enough to post events on it) and the events.
    """
    owner = controlling_owner(child)
    if owner is None:
        return None
    return owner.object_reference(), (await reconcile(kube, owner, coalesce=True)).events


async def resync(kube: Kube, namespaces: Sequence[str]) -> list[tuple[Manifest, list[Event]]]:
    """Reconcile every ScalingDemo: the periodic drift repair.

    Watching the children repairs what the operator is told about; a periodic pass
    also repairs what it never saw (an event lost while it was disconnected, a
    change to something it does not watch). Like any reconcile it writes nothing
    when nothing differs.
    """
    return [
        (owner.object_reference(), (await reconcile(kube, owner, coalesce=True)).events)
        for owner in await kube.list_owners(namespaces)
    ]


async def _reconcile(kube: Kube, owner: Owner, body: Mapping[str, Any]) -> tuple[Outcome, str]:
    generation = body["metadata"].get("generation", 0)
    previous = body.get("status") or {}
    try:
        spec = parse(body.get("spec") or {})
    except SpecError as error:
        invalid = Condition(READY, "False", "InvalidSpec", str(error))
        status = {
            "conditions": merge_conditions(
                previous.get("conditions", []), [invalid], generation, now()
            )
        }
        await _write_status(kube, owner, previous, status)
        return Outcome(warnings_for(previous, invalid)), "invalid"

    strimzi = None
    if spec.kafka.topic_management == "Strimzi":
        strimzi = await kube.served_version(KAFKA_TOPIC.group, KAFKA_TOPIC.versions)
    events, observed, failures, topics = await _children_and_topics(kube, owner, spec, strimzi)
    monitored = _monitoring_condition(spec, owner, observed, failures)
    failures = [failure for failure in failures if not _advisory(failure)]
    deployments = {
        manifest["metadata"]["name"]: manifest
        for manifest in observed
        if manifest["kind"] == "Deployment"
    }
    wanted = [owner.child_name(name) for name in spec.components()]
    workload = workload_condition(wanted, deployments)
    known = topics.topics if topics.topics is not None else previous.get("topics") or []
    notes = _scaling_notes(spec, owner, known)
    scaling = _scaling_conditions(spec, owner, observed, failures, notes)
    # A KafkaTopic that failed holds Ready through TopicsReady; listing it here too would
    # announce the same problem twice.
    broken = [
        failure.message
        for failure in failures
        if not failure.missing and failure.kind != "KafkaTopic"
    ]
    problems = [Condition(READY, "False", "ApplyFailed", "; ".join(broken))] if broken else []
    ready = ready_condition([*problems, *scaling, topics.condition, workload])
    status: dict[str, Any] = {
        "observedGeneration": previous.get("observedGeneration") if failures else generation,
        "conditions": merge_conditions(
            previous.get("conditions", []),
            [ready, *scaling, topics.condition, monitored, workload],
            generation,
            now(),
        ),
        "endpoint": endpoint(owner, spec),
    }
    if spec.kafka.topic_management != "Operator":
        status["topics"] = None
    elif topics.topics is not None:
        status["topics"] = topics.topics
    for name in ("api", "worker"):
        enabled = name in spec.components()
        status[name] = replica_counts(deployments.get(owner.child_name(name))) if enabled else None
    await _write_status(kube, owner, previous, status)
    announced = [
        *events,
        *topics.events,
        *_warnings(previous, [ready, *scaling], notes),
        *problem_warning(previous, topics.condition),
    ]
    return Outcome(announced, topics.retry), "failed" if failures else "applied"


async def _children_and_topics(
    kube: Kube, owner: Owner, spec: ScalingDemoSpec, strimzi: str | None
) -> tuple[list[Event], list[Manifest], list[Failure], TopicsOutcome]:
    """Apply the children and reconcile the topics.

    Topics on the broker are reconciled alongside the children, not after them: the new pods
    should find their topics created with the spec's size, not race a broker that auto-creates
    missing topics with its default size. A slow or unreachable broker does not delay the
    children either way.
    """
    if spec.kafka.topic_management == "Operator":
        topics = asyncio.create_task(reconcile_topics(kube, owner, spec))
        try:
            events, observed, failures = await _apply_children(kube, owner, spec, strimzi)
        except BaseException:
            topics.cancel()
            raise
        return events, observed, failures, await topics
    events, observed, failures = await _apply_children(kube, owner, spec, strimzi)
    return events, observed, failures, _topics_elsewhere(spec, owner, strimzi, observed, failures)


def _topics_elsewhere(
    spec: ScalingDemoSpec,
    owner: Owner,
    strimzi: str | None,
    observed: Sequence[Manifest],
    failures: Sequence[Failure],
) -> TopicsOutcome:
    """TopicsReady when Strimzi or nobody manages the topics."""
    if spec.kafka.topic_management == "None":
        return TopicsOutcome(NOT_MANAGED)
    if strimzi is None:
        return TopicsOutcome(
            Condition(
                TOPICS_READY,
                "False",
                "StrimziNotInstalled",
                "Strimzi is not installed (the cluster serves no kafka.strimzi.io KafkaTopic "
                "version): install Strimzi or choose another spec.kafka.topicManagement; the "
                "operator retries by itself",
            )
        )
    failed = [failure.message for failure in failures if failure.kind == "KafkaTopic"]
    wanted = [owner.child_name(role) for role in ("messages", "tasks")]
    return TopicsOutcome(strimzi_topics_condition(wanted, observed, failures=failed))


def _scaling_notes(
    spec: ScalingDemoSpec, owner: Owner, topics: Sequence[Mapping[str, Any]]
) -> dict[str, list[str]]:
    """What the spec asks that will not happen as written, by the condition that reports it.

    `topics` is status.topics as just observed: the broker's partition counts decide the cap.
    """
    actual = {item["name"]: item["partitions"] for item in topics if "partitions" in item}
    narrowed = [
        f"{owner.child_name(name)} leaves {' and '.join(dropped)} to its autoscaling trigger(s)"
        for name in autoscaling.vertically_scaled(spec)
        if (dropped := autoscaling.resources_left_to_triggers(getattr(spec, name)))
    ]
    return {
        KEDA.condition: autoscaling.partition_caps(spec, owner, actual),
        VPA.condition: narrowed,
    }


def _scaling_conditions(
    spec: ScalingDemoSpec,
    owner: Owner,
    observed: Sequence[Manifest],
    failures: Sequence[Failure],
    notes: Mapping[str, Sequence[str]],
) -> list[Condition]:
    """AutoscalingReady and VerticalScalingReady, their notes appended to the messages."""
    wanted = {
        KEDA: [owner.child_name(name) for name in autoscaling.autoscaled(spec)],
        VPA: [owner.child_name(name) for name in autoscaling.vertically_scaled(spec)],
    }
    return [
        _add_on_condition(scaler, wanted[scaler], observed, failures, notes[scaler.condition])
        for scaler in (KEDA, VPA)
    ]


def _monitoring_condition(
    spec: ScalingDemoSpec, owner: Owner, observed: Sequence[Manifest], failures: Sequence[Failure]
) -> Condition:
    """MonitoringReady: reported beside Ready, never summarised into it (see MONITORING)."""
    wanted = [owner.child_name(name) for name in monitoring.service_monitored(spec)]
    return _add_on_condition(MONITORING, wanted, observed, failures)


def _scaler(kind: str) -> Scaler | None:
    add_on = CHILDREN[kind].add_on
    return None if add_on is None else SCALER_OF_ADD_ON.get(add_on)


def _listed_kinds(strimzi: str | None) -> list[tuple[str, str]]:
    """(apiVersion, kind) of every child kind to list; a served kind only in its found version."""
    return [
        (child.api_version(strimzi if child.listing is Listing.SERVED else None), child.kind)
        for child in CHILD_KINDS
        if child.listing is Listing.OWNED or strimzi is not None
    ]


def _advisory(failure: Failure) -> bool:
    """A missing add-on that holds nothing back: the ServiceMonitor CRD."""
    return failure.missing and _scaler(failure.kind) == MONITORING


def _add_on_condition(
    scaler: Scaler,
    wanted: Sequence[str],
    observed: Sequence[Manifest],
    failures: Sequence[Failure],
    notes: Sequence[str] = (),
) -> Condition:
    own = [failure for failure in failures if _scaler(failure.kind) == scaler]
    return scaling_condition(
        scaler,
        wanted,
        observed,
        missing=any(failure.missing for failure in own),
        failures=[failure.message for failure in own if not failure.missing],
        notes=notes,
    )


def _warnings(
    previous: Mapping[str, Any],
    conditions: Sequence[Condition],
    notes: Mapping[str, Sequence[str]],
) -> list[Event]:
    """One Warning per new problem or note (Ready repeats another condition's: said once)."""
    found: list[Event] = []
    for condition in conditions:
        new = warnings_for(previous, condition)
        new += note_warning(previous, condition, notes.get(condition.type, ()))
        found += [event for event in new if event not in found]
    return found


def note_warning(
    previous: Mapping[str, Any], condition: Condition, notes: Sequence[str]
) -> list[Event]:
    """A Warning when a healthy condition newly carries notes: the spec is not taken literally.

    A VPA that leaves a resource to a cpu/memory trigger (both acting on the same requests would
    fight), or a lag trigger KEDA caps at the partition count below maxReplicas: nothing fails,
    so without a Warning the user would not learn that the demo does not do what they wrote.
    """
    if not notes or not condition.healthy:
        return []
    before = _before(previous, condition.type)
    said = "; ".join(notes)
    # The message also carries KEDA's changing Active verdict: only new notes are news.
    if before.get("status") == "True" and before.get("message", "").endswith(said):
        return []
    return [Event("Warning", NOTE_REASONS[condition.type], said)]


def _before(previous: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """The condition of this type in the status the reconcile started from ({} if none)."""
    return next((item for item in previous.get("conditions", []) if item.get("type") == kind), {})


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
        if not changes:
            observed.append(current)
            continue
        try:
            observed.append(await kube.apply(manifest))
        except ApiException as error:
            if is_transient(error):
                raise
            kind = manifest["kind"]
            missing = error.status == 404 and _scaler(kind) is not None
            failures.append(Failure(kind, f"{_describe(manifest)}: {_api_message(error)}", missing))
            continue
        if current is None:
            events.append(Event("Normal", "Created", f"Created {_describe(manifest)}"))
        else:
            listed = ", ".join(changes[:MAX_LISTED_CHANGES])
            more = len(changes) - MAX_LISTED_CHANGES
            suffix = f" and {more} more" if more > 0 else ""
            events.append(
                Event("Normal", "Updated", f"Updated {_describe(manifest)}: {listed}{suffix}")
            )
    for leftover in live.values():
        await kube.delete(leftover)
        message = f"Deleted {_describe(leftover)}: the spec no longer wants it"
        events.append(Event("Normal", "Deleted", message))
    return events, observed, failures


def warnings_for(previous: Mapping[str, Any], ready: Condition) -> list[Event]:
    """A Warning when Ready newly turns to a state someone must fix; silence while it persists."""
    if ready.healthy or ready.reason not in WARNING_REASONS:
        return []
    before = _before(previous, READY)
    if (before.get("reason"), before.get("message")) == (ready.reason, ready.message):
        return []
    return [Event("Warning", ready.reason, ready.message)]


def problem_warning(previous: Mapping[str, Any], condition: Condition) -> list[Event]:
    """A Warning when a condition newly turns False or its problem changes (TopicsReady: a
    refused partition decrease, a broker that cannot be reached); silence while it persists."""
    if condition.status != "False":
        return []
    before = _before(previous, condition.type)
    if (before.get("status"), before.get("reason"), before.get("message")) == (
        "False",
        condition.reason,
        condition.message,
    ):
        return []
    return [Event("Warning", condition.reason, condition.message)]


async def _write_status(
    kube: Kube, owner: Owner, previous: Mapping[str, Any], status: Mapping[str, Any]
) -> None:
    """Patch only what changed; None removes a field (merge-patch semantics)."""
    patch = {key: value for key, value in status.items() if previous.get(key) != value}
    if patch:
        await kube.patch_status(owner, patch)
