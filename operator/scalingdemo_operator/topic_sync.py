"""The topics part of a reconcile when the operator manages them through the Kafka admin API.

Kept apart from the Kubernetes children: topics live on the broker, so their reconcile has its
own failure mode (the broker is unreachable or refuses us) that must neither stop the children
from being applied nor be mistaken for an invalid spec. The outcome says whether to try again
soon; the kopf handler turns that into a retry with backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import topics
from .builders.common import Owner
from .builders.topics import connection, desired_topics, secret_references
from .kube import Kube
from .spec import ScalingDemoSpec, SpecError, parse
from .status import TOPICS_READY, Condition, Event, Outcome, topics_condition

DELETE_ATTEMPTS = 5
"""Default attempts to delete the topics before the finalizer lets the ScalingDemo go anyway;
with the handler's backoff (10, 20, 40, 80 s) that is about two and a half minutes."""

NOT_MANAGED = Condition(
    TOPICS_READY,
    "True",
    "NotManaged",
    "topics are managed outside the operator (spec.kafka.topicManagement is None)",
)


@dataclass(frozen=True)
class TopicsOutcome:
    """TopicsReady, the status.topics list (None: keep the last known), events, and whether
    the broker could not be used, so that the reconcile is worth repeating soon."""

    condition: Condition
    topics: list[dict[str, Any]] | None = None
    events: list[Event] = field(default_factory=list)
    retry: bool = False


async def admin_connection(
    kube: Kube, owner: Owner, spec: ScalingDemoSpec
) -> topics.KafkaConnection:
    """The admin connection with credentials read from the Secrets the spec names.

    Raises TopicsUnavailable(CredentialsUnavailable) when a Secret cannot be read, lacks its key
    or holds a value that is not usable (not base64 or UTF-8 text): like an unreachable broker,
    it is fixed outside the spec and picked up on a later attempt, so it never escapes as an
    error that would stop the reconcile or hold a deletion forever.
    """
    try:
        values = await kube.read_secret_values(owner.namespace, secret_references(spec))
        return connection(spec, values)
    except ApiException as error:
        detail = f"reading the Kafka credentials: HTTP {error.status} {error.reason}"
        raise topics.TopicsUnavailable("CredentialsUnavailable", detail) from error
    except (LookupError, ValueError) as error:
        raise topics.TopicsUnavailable("CredentialsUnavailable", str(error)) from error


async def reconcile_topics(kube: Kube, owner: Owner, spec: ScalingDemoSpec) -> TopicsOutcome:
    """Create, grow and configure the demo's topics; report what the broker has."""
    wanted = desired_topics(spec, owner)
    try:
        result = await topics.reconcile(await admin_connection(kube, owner, spec), wanted.values())
    except topics.TopicsUnavailable as error:
        return TopicsOutcome(
            Condition(TOPICS_READY, "False", error.reason, error.detail), retry=True
        )
    sizes = {topic.name: topic for topic in result.topics}
    listed = [_listed(role, sizes[topic.name]) for role, topic in wanted.items()]
    done = [Event("Normal", event.reason, event.message) for event in result.done]
    return TopicsOutcome(topics_condition(result), listed, done)


def _listed(role: str, topic: topics.TopicStatus) -> dict[str, Any]:
    """A status.topics entry; a topic whose creation failed has a name and no counts."""
    entry: dict[str, Any] = {"role": role, "name": topic.name}
    if topic.partitions is not None:
        entry["partitions"] = topic.partitions
    if topic.replication_factor is not None:
        entry["replicationFactor"] = topic.replication_factor
    return entry


async def delete_topics(
    kube: Kube,
    owner: Owner,
    raw_spec: Mapping[str, Any],
    attempt: int,
    attempts: int = DELETE_ATTEMPTS,
) -> Outcome:
    """Delete the demo's topics before it goes (deletionPolicy Delete), in bounded attempts.

    A deletion must not hang forever on a broker that is gone: after `attempts` failed
    attempts (or at once, for a spec that cannot be read) the demo is released with a Warning
    naming the topics left behind. A topic that is already gone counts as deleted.
    """
    try:
        spec = parse(raw_spec)
    except SpecError as error:
        return Outcome([Event("Warning", "TopicsNotDeleted", f"the spec is invalid: {error}")])
    names = [topic.name for topic in desired_topics(spec, owner).values()]
    try:
        deleted = await topics.delete(await admin_connection(kube, owner, spec), names)
    except topics.TopicsUnavailable as error:
        problems = [f"{error.reason}: {error.detail}"]
    else:
        problems = [event.message for event in deleted.failed]
        done = [Event("Normal", event.reason, event.message) for event in deleted.done]
        if not problems:
            return Outcome(done)
    if attempt + 1 < attempts:
        return Outcome([], retry=True)
    message = (
        f"gave up deleting topics {', '.join(names)} after {attempts} attempts; "
        f"delete them by hand if they should go: {'; '.join(problems)}"
    )
    return Outcome([Event("Warning", "TopicsNotDeleted", message)])
