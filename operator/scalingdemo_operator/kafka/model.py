"""What a topic reconcile works with: desired and observed topics, changes, results.

Plain values without I/O, so the plan is testable without a broker. The demo's topics come from
the spec (`desired_topics`); the admin connection from the spec's auth section and the Secret
values the caller read (`connection`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import get_args

from ..api import Event, Owner
from ..spec import TOPIC_ROLES, SaslMechanism, ScalingDemoSpec

SASL_MECHANISMS = frozenset(get_args(SaslMechanism))


class TopicsUnavailable(Exception):
    """Kafka could not be reached, authenticated to or heard from: no topic state is known.

    `reason` is CamelCase for a status condition; `detail` is the broker's or client's own text.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class KafkaConnection:
    """How to reach the brokers. Credentials are values (read from Secrets by the caller).

    The SASL user name and password are left out of `repr`, so logging a connection is safe.
    """

    bootstrap_servers: str
    sasl_mechanism: str | None = None
    sasl_username: str | None = field(default=None, repr=False)
    sasl_password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca_file: str | None = None
    tls_ca_pem: str | None = field(default=None, repr=False)
    request_timeout_seconds: float = 10.0
    timeout_seconds: float = 30.0
    client_id: str = "scalingdemo-operator"

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ValueError("bootstrap_servers is empty")
        if self.sasl_mechanism is not None and self.sasl_mechanism not in SASL_MECHANISMS:
            raise ValueError(f"sasl_mechanism must be one of {sorted(SASL_MECHANISMS)}")
        sasl = [
            v is not None for v in (self.sasl_mechanism, self.sasl_username, self.sasl_password)
        ]
        if any(sasl) and not all(sasl):
            raise ValueError("SASL needs a mechanism, a user name and a password together")
        if not self.tls and (self.tls_ca_file or self.tls_ca_pem):
            raise ValueError("a TLS CA is set but tls is False")
        if min(self.request_timeout_seconds, self.timeout_seconds) <= 0:
            raise ValueError("timeouts must be positive")

    @property
    def security_protocol(self) -> str:
        """Kafka's security.protocol implied by the SASL and TLS settings."""
        if self.sasl_mechanism is not None:
            return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"
        return "SSL" if self.tls else "PLAINTEXT"

    @property
    def request_timeout_ms(self) -> int:
        return round(self.request_timeout_seconds * 1000)


@dataclass(frozen=True)
class TopicSettings:
    """A topic's name, size and dynamic config; `config` is copied and read-only."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))


@dataclass(frozen=True)
class DesiredTopic(TopicSettings):
    """A topic as the spec wants it; `config` is its complete dynamic config."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.name:
            raise ValueError("a topic needs a name")
        if self.partitions < 1 or self.replication_factor < 1:
            raise ValueError(f"topic {self.name}: partitions and replication factor must be >= 1")


@dataclass(frozen=True)
class ObservedTopic(TopicSettings):
    """A topic as the broker reports it; `config` holds only its per-topic overrides."""


@dataclass(frozen=True)
class TopicStatus:
    """A topic after reconciling; counts are None when it does not exist (creation failed)."""

    name: str
    partitions: int | None
    replication_factor: int | None


@dataclass(frozen=True)
class TopicsResult:
    """Each desired topic's actual size, what was done (Normal events), refused and failed
    (Warning-worthy: their messages name the topic)."""

    topics: tuple[TopicStatus, ...]
    done: tuple[Event, ...] = ()
    refused: tuple[Event, ...] = ()
    failed: tuple[Event, ...] = ()


@dataclass(frozen=True)
class TopicsDeleted:
    """Topics the broker deleted, and failures; names that did not exist are in neither."""

    deleted: tuple[str, ...] = ()
    failed: tuple[Event, ...] = ()

    @property
    def done(self) -> tuple[Event, ...]:
        return tuple(
            Event("Normal", "TopicDeleted", f"topic {name} deleted") for name in self.deleted
        )


@dataclass(frozen=True)
class TopicsObserved:
    """A topic reconcile: the demo's topic names by role, and either the result or why Kafka
    could not be used (then nothing is known about the topics)."""

    names: dict[str, str]
    result: TopicsResult | None = None
    unavailable: TopicsUnavailable | None = None


def desired_topics(spec: ScalingDemoSpec, owner: Owner) -> dict[str, DesiredTopic]:
    """The demo's topics by role (messages, tasks) with the spec's size and config."""
    names = spec.kafka_names(owner)
    found = {}
    for role in TOPIC_ROLES:
        topic = getattr(spec.kafka.topics, role)
        found[role] = DesiredTopic(
            names.topics[role], topic.partitions, topic.replication_factor, topic.config
        )
    return found


def connection(
    spec: ScalingDemoSpec, credentials: Mapping[tuple[str, str], str]
) -> KafkaConnection:
    """The admin connection the workload's own settings imply; `credentials` holds the values
    of `spec.kafka.secret_references()`, already decoded."""
    auth = spec.kafka.auth
    if auth is None:
        return KafkaConnection(spec.kafka.bootstrap_servers)
    sasl, ca = auth.sasl, auth.ca_reference
    return KafkaConnection(
        spec.kafka.bootstrap_servers,
        sasl_mechanism=sasl.mechanism if sasl else None,
        sasl_username=credentials[sasl.username_reference] if sasl else None,
        sasl_password=credentials[sasl.password_reference] if sasl else None,
        tls=auth.tls_enabled,
        tls_ca_pem=credentials[ca] if ca else None,
    )
