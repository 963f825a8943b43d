"""One reconcile's observations -> the status to write, the events to post, whether to retry.

The reconcile applies, prunes and talks to Kafka; everything it learned arrives here as an
`Observation`, and everything it must write or say leaves as an `Assessment`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from scalingdemo_workload.contract import Defaults

from ..api import CHILDREN, PAUSED_ANNOTATION, AddOn, Event, Manifest, Owner
from ..kafka.model import TopicsObserved
from ..spec import Autoscaling, ScalingDemoSpec
from .conditions import (
    KEDA,
    MONITORING,
    PAUSED,
    READY,
    VPA,
    Condition,
    Scaler,
    merge_conditions,
    ready_condition,
    replica_counts,
    scaling_condition,
    workload_condition,
)
from .topics_ready import NOT_MANAGED, TopicsView, through_admin_api, through_strimzi
from .warnings import (
    CAPPED_BY_PARTITIONS,
    SCALE_FROM_ZERO_UNVERIFIED,
    SCALE_TO_ZERO_HELD_AT_ONE,
    TOLERANCE_NOT_SERVED,
    VERTICAL_SCALING_NARROWED,
    Note,
    problem_warning,
    scaling_warnings,
    warnings_for,
)

SCALER_OF_ADD_ON = {AddOn.KEDA: KEDA, AddOn.VPA: VPA, AddOn.PROMETHEUS_OPERATOR: MONITORING}
"""Add-ons reported in a condition of their own: their CRDs may be missing, which is reported,
not an error (Strimzi's absence is found by discovery and reported in TopicsReady)."""
COMPONENTS = ("api", "worker")
HPA_DEFAULT_TOLERANCE = Decimal("0.1")
"""The controller manager's --horizontal-pod-autoscaler-tolerance default."""


@dataclass(frozen=True)
class Failure:
    """A child that could not be applied; `missing` when its kind's CRD is not installed."""

    kind: str
    message: str
    missing: bool = False


@dataclass(frozen=True)
class Observation:
    """What one reconcile of a valid spec saw and did.

    `observed` holds every wanted child as it is now (applied or found unchanged; the reconcile
    announces the changes itself), `topics` the topic reconcile when the operator manages
    topics, `strimzi` the
    KafkaTopic version the cluster serves (None: none, or not asked), `tolerance` whether the
    API server keeps the HPA's tolerance (None: not asked, as no spec sets one, or not allowed).
    """

    owner: Owner
    spec: ScalingDemoSpec
    body: Mapping[str, Any]
    observed: Sequence[Manifest]
    failures: Sequence[Failure] = ()
    topics: TopicsObserved | None = None
    strimzi: str | None = None
    tolerance: bool | None = None

    @property
    def generation(self) -> int:
        return int(self.body["metadata"].get("generation", 0))

    @property
    def previous(self) -> Mapping[str, Any]:
        """The status the reconcile started from."""
        return self.body.get("status") or {}


@dataclass(frozen=True)
class Assessment:
    """The status fields to write (None removes one), events to post, whether to try again
    soon, and the reconcile's result for the metrics (applied, failed, invalid)."""

    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    retry: bool = False
    result: str = "applied"


def invalid(body: Mapping[str, Any], problem: str, now: str) -> Assessment:
    """A spec that cannot be used: Ready False with the problem, nothing else changes."""
    return _not_ready(body, Condition(READY, "False", "InvalidSpec", problem), now, "invalid")


def failed(body: Mapping[str, Any], problem: str, now: str) -> Assessment:
    """A reconcile that ended in an error nobody foresaw: Ready False saying so, one Warning
    (not one per attempt), and a retry, which the reconciler backs off."""
    condition = Condition(
        READY, "False", "ReconcileFailed", f"{problem}; the operator retries with backoff"
    )
    return _not_ready(body, condition, now, "error", retry=True)


def _not_ready(
    body: Mapping[str, Any], condition: Condition, now: str, result: str, retry: bool = False
) -> Assessment:
    """Ready as given, announced once; every other condition and field is left as it was."""
    previous = body.get("status") or {}
    generation = int(body["metadata"].get("generation", 0))
    conditions = merge_conditions(_carried(previous), [condition], generation, now)
    events = [*_resumed(previous), *warnings_for(previous, condition)]
    return Assessment({"conditions": conditions}, events, retry, result)


def paused(body: Mapping[str, Any], now: str) -> Assessment:
    """A paused demo: said once (Paused True, Ready Unknown, one event), then nothing at all.

    Once the status says Paused it is left as it is, even when the spec changes meanwhile: a
    write of any kind would be the operator touching a demo the user took over.
    """
    previous = body.get("status") or {}
    if says_paused(previous):
        return Assessment({}, result="paused")
    message = (
        f'the operator writes nothing for this demo while annotation {PAUSED_ANNOTATION} is "true"'
        "; its children stay as they are, for editing by hand"
    )
    conditions = [
        Condition(READY, "Unknown", "Paused", message),
        Condition(PAUSED, "True", "PausedByAnnotation", message),
    ]
    generation = int(body["metadata"].get("generation", 0))
    merged = merge_conditions(previous.get("conditions", []), conditions, generation, now)
    return Assessment({"conditions": merged}, [Event("Normal", "Paused", message)], False, "paused")


def says_paused(status: Mapping[str, Any]) -> bool:
    """Whether a status carries Paused=True."""
    return any(
        item.get("type") == PAUSED and item.get("status") == "True"
        for item in status.get("conditions", [])
    )


def _carried(previous: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The previous conditions a reconcile builds on: a Paused condition ends with the pause."""
    return [item for item in previous.get("conditions", []) if item.get("type") != PAUSED]


def _resumed(previous: Mapping[str, Any]) -> list[Event]:
    """One Normal event when the first reconcile after a pause takes over again."""
    if not says_paused(previous):
        return []
    message = f"annotation {PAUSED_ANNOTATION} is gone: the operator reconciles the demo again"
    return [Event("Normal", "Resumed", message)]


def assess(seen: Observation, now: str) -> Assessment:
    """Conditions, replica counts, endpoint and topics; Warnings for what newly needs a person."""
    spec, owner, previous = seen.spec, seen.owner, seen.previous
    topics = _topics(seen)
    monitored = _add_on_condition(MONITORING, spec.service_monitored(), seen)
    failures = [failure for failure in seen.failures if not _advisory(failure)]
    deployments = {
        manifest["metadata"]["name"]: manifest
        for manifest in seen.observed
        if manifest["kind"] == "Deployment"
    }
    workload = workload_condition(
        [owner.child_name(name) for name in spec.components()], deployments
    )
    known = topics.topics if topics.topics is not None else previous.get("topics") or []
    notes = _scaling_notes(spec, owner, known, seen.tolerance)
    scaling = [
        _add_on_condition(KEDA, spec.autoscaled(), seen, failures, notes[KEDA.condition]),
        _add_on_condition(VPA, spec.vertically_scaled(), seen, failures, notes[VPA.condition]),
    ]
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
        "observedGeneration": previous.get("observedGeneration") if failures else seen.generation,
        "conditions": merge_conditions(
            _carried(previous),
            [ready, *scaling, topics.condition, monitored, workload],
            seen.generation,
            now,
        ),
        "endpoint": endpoint(owner, spec),
    }
    if spec.kafka.topic_management != "Operator":
        status["topics"] = None
    elif topics.topics is not None:
        status["topics"] = topics.topics
    for name in COMPONENTS:
        enabled = name in spec.components()
        status[name] = replica_counts(deployments.get(owner.child_name(name))) if enabled else None
    events = [
        *_resumed(previous),
        *topics.events,
        *scaling_warnings(previous, [ready, *scaling], notes),
        *problem_warning(previous, topics.condition),
    ]
    return Assessment(status, events, topics.retry, "failed" if failures else "applied")


def endpoint(owner: Owner, spec: ScalingDemoSpec) -> str:
    """In-cluster URL of the API, empty when the API component is disabled."""
    if not spec.api.enabled:
        return ""
    return f"http://{owner.child_name('api')}.{owner.namespace}.svc:{Defaults.PORT}"


def _topics(seen: Observation) -> TopicsView:
    if seen.topics is not None:
        return through_admin_api(seen.topics)
    if seen.spec.kafka.topic_management == "None":
        return TopicsView(NOT_MANAGED)
    failed = [failure.message for failure in seen.failures if failure.kind == "KafkaTopic"]
    return through_strimzi(seen.owner, seen.strimzi, seen.observed, failed)


def partition_caps(
    spec: ScalingDemoSpec,
    owner: Owner,
    actual: Mapping[str, int] | None = None,
    *,
    tolerance_served: bool = True,
) -> list[str]:
    """Lag triggers that KEDA silently stops at the topic's partition count, below maxReplicas,
    or that the HPA's tolerance stops one replica short of it.

    Without allowIdleConsumers (and with ensureEvenDistributionOfPartitions) KEDA never asks for
    more replicas than partitions (the extra consumers would idle), so a maxReplicas above it is
    not what the demo will show. `actual` holds partition counts the broker reported by topic
    name; they win over the spec's (a topic may have more partitions than the spec, which Kafka
    cannot shrink). `tolerance_served` is False when the API server drops the HPA's tolerance,
    so the cluster's default applies whatever the spec says.
    """
    names = spec.kafka_names(owner)
    found = []
    for name in spec.autoscaled():
        bounds = spec.component(name).autoscaling
        for trigger in bounds.triggers:
            lag = trigger.kafka_lag
            if lag is None or not lag.caps_at_partitions:
                continue
            topic = names.topics[lag.topic]
            partitions = (actual or {}).get(topic, getattr(spec.kafka.topics, lag.topic).partitions)
            where = f"{owner.child_name(name)} trigger {trigger.name}"
            if bounds.max_replicas > partitions:
                even = lag.ensure_even_distribution_of_partitions
                remedy = "" if even else " or set allowIdleConsumers"
                found.append(
                    f"{where} scales to at most the {partitions} partitions of topic {topic}, "
                    f"not maxReplicas {bounds.max_replicas}: add partitions{remedy}"
                )
            tolerance = _scale_up_tolerance(bounds, tolerance_served)
            if bounds.max_replicas >= partitions and one_short(partitions, tolerance):
                step = 1 / Decimal(partitions - 1)
                found.append(
                    f"{where} stops at {partitions - 1} replicas, one short of the "
                    f"{partitions} partitions: there KEDA's capped lag ({partitions} x "
                    f"lagThreshold) is {float(step):.1%} above the HPA's target, within its "
                    f"scale-up tolerance of {float(tolerance):.1%}; set "
                    f"behavior.scaleUp.tolerance below {step:.4f}"
                )
    return found


def one_short(partitions: int, tolerance: Decimal) -> bool:
    """Whether the HPA never takes the last step to `partitions` replicas (keda#2908).

    With the lag capped at partitions x lagThreshold, the HPA at partitions - 1 replicas sees a
    ratio of partitions / (partitions - 1) to its target, and moves only when the ratio exceeds
    1 + tolerance: with the default 10%, at 11 partitions or more it never does.
    """
    return partitions > 1 and Decimal(1) / (partitions - 1) <= tolerance


def _scale_up_tolerance(autoscaling: Autoscaling, served: bool) -> Decimal:
    """The scale-up tolerance the HPA applies: the spec's if the cluster keeps it, else 10%."""
    rules = autoscaling.behavior.scale_up if autoscaling.behavior else None
    if served and rules is not None and rules.tolerance is not None:
        return Decimal(rules.tolerance)
    return HPA_DEFAULT_TOLERANCE


def _scaling_notes(
    spec: ScalingDemoSpec,
    owner: Owner,
    topics: Sequence[Mapping[str, Any]],
    tolerance: bool | None = None,
) -> dict[str, list[Note]]:
    """What the spec asks that will not happen as written, by the condition that reports it.

    `topics` is status.topics as just observed: the broker's partition counts decide the cap.
    `tolerance` False: the API server drops the HPA's tolerance that the spec sets.
    """
    actual = {item["name"]: item["partitions"] for item in topics if "partitions" in item}
    narrowed = [
        Note(
            VERTICAL_SCALING_NARROWED,
            f"{owner.child_name(name)} leaves {' and '.join(dropped)} to its autoscaling "
            "trigger(s)",
        )
        for name in spec.vertically_scaled()
        if (dropped := spec.component(name).resources_left_to_triggers())
    ]
    capped = [
        Note(CAPPED_BY_PARTITIONS, cap)
        for cap in partition_caps(spec, owner, actual, tolerance_served=tolerance is not False)
    ]
    unserved = tolerance_dropped(spec, owner) if tolerance is False else []
    keda = [*unserved, *capped, *zero_notes(spec, owner)]
    return {KEDA.condition: keda, VPA.condition: narrowed}


def zero_notes(spec: ScalingDemoSpec, owner: Owner) -> list[Note]:
    """Components at minReplicas 0 that may not wake, or may not go back to zero.

    The spec refuses zero when no trigger can see demand without the component's pods; a raw
    Prometheus query may or may not, which only its author knows. With offsetReset latest,
    KEDA counts a lag of 1 on every partition where the group never committed (keda#2033), and
    the workload commits only what it processed: until every partition has carried a task, the
    component stays at 1.
    """
    found = []
    for name in spec.autoscaled():
        autoscaling = spec.component(name).autoscaling
        if autoscaling.min_replicas != 0:
            continue
        child = owner.child_name(name)
        lag = [trigger for trigger in autoscaling.triggers if trigger.kafka_lag is not None]
        if not lag:
            found.append(
                Note(
                    SCALE_FROM_ZERO_UNVERIFIED,
                    f"{child} scales to zero and only Prometheus queries can wake it: each "
                    f"must read series that exist while no {child} pod runs",
                )
            )
        elif spec.kafka.offset_reset == "latest":
            found.append(
                Note(
                    SCALE_TO_ZERO_HELD_AT_ONE,
                    f"{child} scales to zero on lag with offsetReset latest: KEDA counts a lag "
                    "of 1 on each partition the group never committed on, so it stays at 1 "
                    "until every partition has carried a task; offsetReset earliest avoids it",
                )
            )
    return found


def tolerance_dropped(spec: ScalingDemoSpec, owner: Owner) -> list[Note]:
    """The note for components whose behavior sets a tolerance this API server does not keep."""
    names = [
        owner.child_name(name)
        for name in spec.autoscaled()
        if spec.component(name).autoscaling.sets_tolerance
    ]
    if not names:
        return []
    return [
        Note(
            TOLERANCE_NOT_SERVED,
            f"{', '.join(names)}: behavior tolerance is not served by this API server (the "
            "HPAConfigurableTolerance feature gate is off), so the HPA drops it and applies the "
            "cluster's default tolerance",
        )
    ]


def scaler_of(kind: str) -> Scaler | None:
    """The add-on condition that reports on children of `kind` (None: a core kind)."""
    add_on = CHILDREN[kind].add_on
    return None if add_on is None else SCALER_OF_ADD_ON.get(add_on)


def _advisory(failure: Failure) -> bool:
    """A missing add-on that holds nothing back: the ServiceMonitor CRD."""
    return failure.missing and scaler_of(failure.kind) == MONITORING


def _add_on_condition(
    scaler: Scaler,
    components: Sequence[str],
    seen: Observation,
    failures: Sequence[Failure] | None = None,
    notes: Sequence[Note] = (),
) -> Condition:
    """The scaler's condition over its objects of the wanted `components`."""
    checked = seen.failures if failures is None else failures
    own = [failure for failure in checked if scaler_of(failure.kind) == scaler]
    return scaling_condition(
        scaler,
        [seen.owner.child_name(name) for name in components],
        seen.observed,
        missing=any(failure.missing for failure in own),
        failures=[failure.message for failure in own if not failure.missing],
        notes=[note.message for note in notes],
    )
