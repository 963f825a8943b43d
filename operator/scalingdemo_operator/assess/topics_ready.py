"""TopicsReady, status.topics and the topic events, whoever manages the topics.

Through the admin API the topic reconcile's result decides; with Strimzi, the KafkaTopics and
Strimzi's verdict on them; with topicManagement None, nothing is checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..api import Event, Manifest, Owner
from ..kafka.model import TopicsObserved, TopicStatus
from ..spec import TOPIC_ROLES
from .conditions import TOPICS_READY, Condition, strimzi_topics_condition, topics_condition

NOT_MANAGED = Condition(
    TOPICS_READY,
    "True",
    "NotManaged",
    "topics are managed outside the operator (spec.kafka.topicManagement is None)",
)
STRIMZI_MISSING = Condition(
    TOPICS_READY,
    "False",
    "StrimziNotInstalled",
    "Strimzi is not installed (the cluster serves no kafka.strimzi.io KafkaTopic "
    "version): install Strimzi or choose another spec.kafka.topicManagement; the "
    "operator retries by itself",
)


@dataclass(frozen=True)
class TopicsView:
    """TopicsReady, the status.topics list (None: keep the last known), events, and whether
    the broker could not be used, so that the reconcile is worth repeating soon."""

    condition: Condition
    topics: list[dict[str, Any]] | None = None
    events: list[Event] = field(default_factory=list)
    retry: bool = False


def through_admin_api(observed: TopicsObserved) -> TopicsView:
    """From a topic reconcile through the Kafka admin API."""
    if observed.unavailable is not None:
        error = observed.unavailable
        return TopicsView(Condition(TOPICS_READY, "False", error.reason, error.detail), retry=True)
    assert observed.result is not None, "a topic reconcile has a result or is unavailable"
    sizes = {topic.name: topic for topic in observed.result.topics}
    listed = [_listed(role, sizes[name]) for role, name in observed.names.items()]
    return TopicsView(topics_condition(observed.result), listed, list(observed.result.done))


def _listed(role: str, topic: TopicStatus) -> dict[str, Any]:
    """A status.topics entry; a topic whose creation failed has a name and no counts."""
    entry: dict[str, Any] = {"role": role, "name": topic.name}
    if topic.partitions is not None:
        entry["partitions"] = topic.partitions
    if topic.replication_factor is not None:
        entry["replicationFactor"] = topic.replication_factor
    return entry


def through_strimzi(
    owner: Owner, strimzi: str | None, observed: Sequence[Manifest], failed: Sequence[str]
) -> TopicsView:
    """From the KafkaTopics applied (`failed`: messages of those that could not be)."""
    if strimzi is None:
        return TopicsView(STRIMZI_MISSING)
    wanted = [owner.child_name(role) for role in TOPIC_ROLES]
    return TopicsView(strimzi_topics_condition(wanted, observed, failures=failed))
