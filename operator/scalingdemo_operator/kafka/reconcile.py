"""The topics part of a reconcile when the operator manages them through the Kafka admin API.

Kept apart from the Kubernetes children: topics live on the broker, so their reconcile has its
own failure mode (the broker is unreachable or refuses us) that must neither stop the children
from being applied nor be mistaken for an invalid spec. What was learned is returned as is; the
assessment turns it into TopicsReady, status.topics and events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..api import Event, Outcome, Owner
from ..spec import ScalingDemoSpec, SecretReference, SpecError, parse
from . import admin
from .model import (
    KafkaConnection,
    TopicsObserved,
    TopicsUnavailable,
    connection,
    desired_topics,
)


class Credentials(Protocol):
    """Where the values of the Secrets a spec names are read (the watch-fed cache)."""

    def secret_values(
        self, namespace: str, references: Sequence[SecretReference]
    ) -> dict[SecretReference, str]: ...


def admin_connection(
    credentials: Credentials, owner: Owner, spec: ScalingDemoSpec
) -> KafkaConnection:
    """The admin connection with credentials read from the Secrets the spec names.

    Raises TopicsUnavailable(CredentialsUnavailable) when a Secret is not there, lacks its key
    or holds a value that is not usable (not base64 or UTF-8 text): like an unreachable broker,
    it is fixed outside the spec and picked up on a later attempt, so it never escapes as an
    error that would stop the reconcile or hold a deletion forever.
    """
    try:
        values = credentials.secret_values(owner.namespace, spec.kafka.secret_references())
        return connection(spec, values)
    except (LookupError, ValueError) as error:
        raise TopicsUnavailable("CredentialsUnavailable", str(error)) from error


async def reconcile_topics(
    credentials: Credentials, owner: Owner, spec: ScalingDemoSpec
) -> TopicsObserved:
    """Create, grow and configure the demo's topics; report what the broker has."""
    wanted = desired_topics(spec, owner)
    names = {role: topic.name for role, topic in wanted.items()}
    try:
        result = await admin.reconcile(admin_connection(credentials, owner, spec), wanted.values())
    except TopicsUnavailable as error:
        return TopicsObserved(names, unavailable=error)
    return TopicsObserved(names, result=result)


async def delete_topics(
    credentials: Credentials, owner: Owner, raw_spec: Mapping[str, Any], attempt: int, attempts: int
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
        deleted = await admin.delete(admin_connection(credentials, owner, spec), names)
    except TopicsUnavailable as error:
        problems = [f"{error.reason}: {error.detail}"]
    else:
        problems = [event.message for event in deleted.failed]
        if not problems:
            return Outcome(list(deleted.done))
    if attempt + 1 < attempts:
        return Outcome([], retry=True)
    message = (
        f"gave up deleting topics {', '.join(names)} after {attempts} attempts; "
        f"delete them by hand if they should go: {'; '.join(problems)}"
    )
    return Outcome([Event("Warning", "TopicsNotDeleted", message)])
