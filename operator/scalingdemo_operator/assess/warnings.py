"""Which condition changes deserve a Warning event: those someone must act on, said once.

A Warning repeats on every reconcile only if the problem changes; while it persists the status
condition says it and the event stream stays quiet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..api import Event
from .conditions import KEDA, READY, VPA, Condition

WARNING_REASONS = frozenset(
    {
        "InvalidSpec",
        "ApplyFailed",
        "ReconcileFailed",
        f"{KEDA.kind}NotReady",
        KEDA.missing_reason,
        VPA.missing_reason,
    }
)
"""Condition reasons that need a person: each new one is announced once with a Warning event."""
CAPPED_BY_PARTITIONS = "ReplicasCappedByPartitions"
VERTICAL_SCALING_NARROWED = "VerticalScalingNarrowed"
SCALE_FROM_ZERO_UNVERIFIED = "ScaleFromZeroUnverified"
SCALE_TO_ZERO_HELD_AT_ONE = "ScaleToZeroHeldAtOne"
TOLERANCE_NOT_SERVED = "ToleranceNotServed"


@dataclass(frozen=True)
class Note:
    """Something the spec asks that will not happen as written (or may not), on a healthy
    condition, with the reason of the Warning that announces it."""

    reason: str
    message: str


def _before(previous: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """The condition of this type in the status the reconcile started from ({} if none)."""
    return next((item for item in previous.get("conditions", []) if item.get("type") == kind), {})


def warnings_for(previous: Mapping[str, Any], ready: Condition) -> list[Event]:
    """A Warning when Ready newly turns to a state someone must fix; silence while it persists."""
    if ready.healthy or ready.reason not in WARNING_REASONS:
        return []
    before = _before(previous, READY)
    if (before.get("reason"), before.get("message")) == (ready.reason, ready.message):
        return []
    return [Event("Warning", ready.reason, ready.message)]


def note_warning(
    previous: Mapping[str, Any], condition: Condition, notes: Sequence[Note]
) -> list[Event]:
    """Warnings when a healthy condition newly carries notes: the spec is not taken literally.

    A VPA that leaves a resource to a cpu/memory trigger (both acting on the same requests would
    fight), a lag trigger KEDA caps at the partition count below maxReplicas, a component at
    zero that only a query its author must vouch for can wake: nothing fails, so without a
    Warning the user would not learn that the demo may not do what they wrote. One Warning per
    reason, listing its notes.
    """
    if not notes or not condition.healthy:
        return []
    before = _before(previous, condition.type)
    said = "; ".join(note.message for note in notes)
    # The message also carries KEDA's changing Active verdict: only new notes are news.
    if before.get("status") == "True" and before.get("message", "").endswith(said):
        return []
    reasons = dict.fromkeys(note.reason for note in notes)
    return [
        Event(
            "Warning",
            reason,
            "; ".join(note.message for note in notes if note.reason == reason),
        )
        for reason in reasons
    ]


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


def scaling_warnings(
    previous: Mapping[str, Any],
    conditions: Sequence[Condition],
    notes: Mapping[str, Sequence[Note]],
) -> list[Event]:
    """One Warning per new problem or note (Ready repeats another condition's: said once)."""
    found: list[Event] = []
    for condition in conditions:
        new = warnings_for(previous, condition)
        new += note_warning(previous, condition, notes.get(condition.type, ()))
        found += [event for event in new if event not in found]
    return found
