"""Kafka topic reconciliation through the Kafka admin API.

The operator core maps a ScalingDemo's topics onto `DesiredTopic` values and its Kafka section
onto a `KafkaConnection`, then calls `reconcile` (or `delete` for deletionPolicy Delete). As
everywhere in the operator, deciding is pure and separate from talking: `plan` compares desired
and observed topics; only `observe`, `apply`, `reconcile` and `delete` reach Kafka.

Semantics (docs/topics.md explains them for users):

- Partitions only grow. A smaller count in the spec is refused (Kafka cannot remove partitions)
  and so is a different replication factor (that needs a partition reassignment, which this
  path does not do). A refusal concerns only that setting: the topic's other changes are made.
- The spec's config is the topic's COMPLETE set of dynamic (per-topic) configs. Kafka's
  AlterConfigs, the only config call aiokafka offers, replaces the whole set: keys left out go
  back to the broker default. We make that the contract instead of emulating an incremental
  update: when the dynamic configs on the broker differ from the spec in any way (a value, a key
  set by hand, a key dropped from the spec), the spec's full set is written. Broker-wide
  defaults and static broker settings are never touched.
- Every call opens its own admin client and closes it, so a broker restart or new credentials
  need no special handling, and every call returns or raises within
  `KafkaConnection.timeout_seconds`. Not reaching, authenticating to or hearing from Kafka
  raises `TopicsUnavailable` with a CamelCase reason for a status condition. An error the broker
  returns for one topic (an invalid config value, more replicas than brokers) does not raise:
  the result reports it for that topic, and the other topics are still reconciled.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    BrokerResponseError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    SaslAuthenticationFailed,
    UnknownTopicOrPartitionError,
    UnsupportedSaslMechanismError,
    for_code,
)
from aiokafka.helpers import create_ssl_context

log = logging.getLogger(__name__)

T = TypeVar("T")

SASL_MECHANISMS = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})
DYNAMIC_TOPIC_CONFIG = 1
"""DescribeConfigs `config_source` of a per-topic override: the only configs we manage."""
UNKNOWN_TOPIC = UnknownTopicOrPartitionError.errno

_UNAVAILABLE_REASONS: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    (
        (
            AuthenticationFailedError,
            AuthenticationMethodNotSupported,
            SaslAuthenticationFailed,
            UnsupportedSaslMechanismError,
            IllegalSaslStateError,
        ),
        "AuthenticationFailed",
    ),
    ((ssl.SSLError,), "TlsHandshakeFailed"),
    ((TimeoutError, RequestTimedOutError, KafkaTimeoutError), "BrokerTimeout"),
    ((OSError, KafkaConnectionError, NodeNotReadyError), "BrokerUnreachable"),
)
"""First match wins: SSL and timeout errors are OSErrors too, so they come before it."""


class TopicsUnavailable(Exception):
    """Kafka could not be reached, authenticated to or heard from: no topic state is known.

    `reason` is CamelCase for a status condition; `detail` is the broker's or client's own text.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    @classmethod
    def from_error(cls, error: BaseException, where: str = "") -> TopicsUnavailable:
        """Classify an exception from aiokafka or the network; `where` names the broker."""
        reason = next(
            (reason for kinds, reason in _UNAVAILABLE_REASONS if isinstance(error, kinds)),
            _reason_of(type(error)),
        )
        detail = str(error) or type(error).__name__
        return cls(reason, f"{where}: {detail}" if where else detail)


def _reason_of(error: type[BaseException]) -> str:
    """CamelCase reason from an error class: InvalidPartitionsError -> InvalidPartitions."""
    return error.__name__.removesuffix("Error")


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

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments shared by `AIOKafkaAdminClient` and aiokafka's `create_conn`."""
        options: dict[str, Any] = {
            "client_id": self.client_id,
            "request_timeout_ms": self.request_timeout_ms,
            "security_protocol": self.security_protocol,
        }
        if self.tls:
            options["ssl_context"] = self._ssl_context()
        if self.sasl_mechanism is not None:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options

    def _ssl_context(self) -> ssl.SSLContext:
        """System trust unless a CA is given; a bad CA is a TLS problem, not a network one."""
        try:
            return create_ssl_context(cafile=self.tls_ca_file, cadata=self.tls_ca_pem)
        except (OSError, ValueError) as error:
            raise TopicsUnavailable(
                "TlsConfigInvalid", f"the TLS CA cannot be used: {error}"
            ) from error


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
class TopicEvent:
    """One thing to tell about one topic; maps onto a Kubernetes event (CamelCase reason)."""

    topic: str
    reason: str
    message: str


@dataclass(frozen=True)
class PartitionIncrease:
    """Partitions to add to an existing topic (Kafka can add them, never remove them)."""

    topic: str
    current: int
    desired: int

    @property
    def event(self) -> TopicEvent:
        return TopicEvent(
            self.topic,
            "TopicPartitionsIncreased",
            f"topic {self.topic}: partitions raised from {self.current} to {self.desired}",
        )


@dataclass(frozen=True)
class ConfigChange:
    """The complete config to write, and what differs: key -> (before, after), None if unset."""

    topic: str
    config: Mapping[str, str]
    changed: Mapping[str, tuple[str | None, str | None]]

    @property
    def event(self) -> TopicEvent:
        changes = ", ".join(
            f"{key} {_shown(before)} -> {_shown(after)}"
            for key, (before, after) in self.changed.items()
        )
        return TopicEvent(self.topic, "TopicConfigChanged", f"topic {self.topic}: {changes}")


def _shown(value: str | None) -> str:
    return "(broker default)" if value is None else value


def _creation_event(topic: DesiredTopic) -> TopicEvent:
    """Says everything the topic was created with: the spec may change before anyone looks."""
    config = ", ".join(f"{key}={value}" for key, value in sorted(topic.config.items()))
    return TopicEvent(
        topic.name,
        "TopicCreated",
        f"topic {topic.name} created with {topic.partitions} partitions, replication factor "
        f"{topic.replication_factor}" + (f" and config {config}" if config else ""),
    )


@dataclass(frozen=True)
class Changes:
    """Writes to the broker: those a plan wants, or the part the broker acknowledged."""

    create: tuple[DesiredTopic, ...] = ()
    increase: tuple[PartitionIncrease, ...] = ()
    reconfigure: tuple[ConfigChange, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.create or self.increase or self.reconfigure)

    @property
    def events(self) -> tuple[TopicEvent, ...]:
        """One event per change, to announce the acknowledged ones."""
        return (
            *(_creation_event(topic) for topic in self.create),
            *(increase.event for increase in self.increase),
            *(change.event for change in self.reconfigure),
        )


@dataclass(frozen=True)
class TopicPlan:
    """What to change on the broker, and what the spec asks for that cannot be done."""

    changes: Changes = Changes()
    refused: tuple[TopicEvent, ...] = ()


@dataclass(frozen=True)
class Applied:
    """The changes the broker acknowledged, and its per-topic errors for the others."""

    done: Changes = Changes()
    failed: tuple[TopicEvent, ...] = ()


@dataclass(frozen=True)
class TopicStatus:
    """A topic after reconciling; counts are None when it does not exist (creation failed)."""

    name: str
    partitions: int | None
    replication_factor: int | None


@dataclass(frozen=True)
class TopicsResult:
    """Each desired topic's actual size, what was done (Normal events), refused and failed."""

    topics: tuple[TopicStatus, ...]
    done: tuple[TopicEvent, ...] = ()
    refused: tuple[TopicEvent, ...] = ()
    failed: tuple[TopicEvent, ...] = ()

    @property
    def ready(self) -> bool:
        """Every topic is as the spec says: nothing refused, nothing failed."""
        return not (self.refused or self.failed)

    @classmethod
    def of(
        cls,
        desired: Iterable[DesiredTopic],
        observed: Mapping[str, ObservedTopic],
        plan: TopicPlan,
        applied: Applied,
    ) -> TopicsResult:
        """Sizes as observed, updated by the changes the broker acknowledged.

        Acknowledged rather than read back: the broker's metadata lags its controller by a
        moment, so a read right after a change can still show the old state.
        """
        after = {name: _status(topic) for name, topic in observed.items()}
        after |= {topic.name: _status(topic) for topic in applied.done.create}
        for increase in applied.done.increase:
            after[increase.topic] = replace(after[increase.topic], partitions=increase.desired)
        return cls(
            topics=tuple(
                after.get(topic.name, TopicStatus(topic.name, None, None))
                for topic in unique(desired)
            ),
            done=applied.done.events,
            refused=plan.refused,
            failed=applied.failed,
        )


def _status(topic: TopicSettings) -> TopicStatus:
    return TopicStatus(topic.name, topic.partitions, topic.replication_factor)


@dataclass(frozen=True)
class TopicsDeleted:
    """Topics the broker deleted, and failures; names that did not exist are in neither."""

    deleted: tuple[str, ...] = ()
    failed: tuple[TopicEvent, ...] = ()

    @property
    def done(self) -> tuple[TopicEvent, ...]:
        return tuple(
            TopicEvent(name, "TopicDeleted", f"topic {name} deleted") for name in self.deleted
        )


def unique(desired: Iterable[DesiredTopic]) -> tuple[DesiredTopic, ...]:
    """Desired topics without repeats; one name with two definitions is a caller's bug."""
    by_name: dict[str, DesiredTopic] = {}
    for topic in desired:
        if by_name.setdefault(topic.name, topic) != topic:
            raise ValueError(f"topic {topic.name} is desired twice with different settings")
    return tuple(by_name.values())


def plan(desired: Iterable[DesiredTopic], observed: Mapping[str, ObservedTopic]) -> TopicPlan:
    """Compare desired with observed topics (missing from `observed` = does not exist)."""
    create: list[DesiredTopic] = []
    increase: list[PartitionIncrease] = []
    reconfigure: list[ConfigChange] = []
    refused: list[TopicEvent] = []
    for topic in unique(desired):
        current = observed.get(topic.name)
        if current is None:
            create.append(topic)
            continue
        refused.extend(_refusals(topic, current))
        if topic.partitions > current.partitions:
            increase.append(PartitionIncrease(topic.name, current.partitions, topic.partitions))
        change = _config_change(topic, current)
        if change is not None:
            reconfigure.append(change)
    return TopicPlan(Changes(tuple(create), tuple(increase), tuple(reconfigure)), tuple(refused))


def _refusals(topic: DesiredTopic, current: ObservedTopic) -> Iterator[TopicEvent]:
    if topic.partitions < current.partitions:
        yield TopicEvent(
            topic.name,
            "PartitionDecreaseRefused",
            f"topic {topic.name} has {current.partitions} partitions and the spec asks for "
            f"{topic.partitions}: Kafka cannot remove partitions, the topic keeps "
            f"{current.partitions}",
        )
    if topic.replication_factor != current.replication_factor:
        yield TopicEvent(
            topic.name,
            "ReplicationFactorChangeRefused",
            f"topic {topic.name} has replication factor {current.replication_factor} and the "
            f"spec asks for {topic.replication_factor}: that needs a partition reassignment, "
            f"which the operator does not do, the topic keeps {current.replication_factor}",
        )


def _config_change(topic: DesiredTopic, current: ObservedTopic) -> ConfigChange | None:
    keys = sorted(topic.config.keys() | current.config.keys())
    changed = {
        key: (current.config.get(key), topic.config.get(key))
        for key in keys
        if current.config.get(key) != topic.config.get(key)
    }
    return ConfigChange(topic.name, topic.config, changed) if changed else None


async def observe(connection: KafkaConnection, names: Collection[str]) -> dict[str, ObservedTopic]:
    """The named topics that exist, with partitions, replication factor and dynamic config."""
    return await _session(connection, lambda admin: _observe(admin, names))


async def apply(connection: KafkaConnection, topic_plan: TopicPlan) -> Applied:
    """Create topics, raise partitions, write configs; per-topic broker errors are returned."""
    return await _session(connection, lambda admin: _apply(admin, topic_plan, connection))


async def reconcile(connection: KafkaConnection, desired: Iterable[DesiredTopic]) -> TopicsResult:
    """Observe, plan and apply in one admin session; nothing is written in steady state."""
    wanted = unique(desired)

    async def work(admin: AIOKafkaAdminClient) -> TopicsResult:
        observed = await _observe(admin, [topic.name for topic in wanted])
        topic_plan = plan(wanted, observed)
        applied = await _apply(admin, topic_plan, connection)
        return TopicsResult.of(wanted, observed, topic_plan, applied)

    return await _session(connection, work)


async def delete(connection: KafkaConnection, names: Collection[str]) -> TopicsDeleted:
    """Delete the named topics (deletionPolicy Delete); topics already gone are fine."""
    if not names:
        return TopicsDeleted()

    wanted = list(dict.fromkeys(names))

    async def work(admin: AIOKafkaAdminClient) -> TopicsDeleted:
        response = await admin.delete_topics(wanted, timeout_ms=connection.request_timeout_ms)
        items = response.to_object()["topic_error_codes"]
        codes = {item["topic"]: item["error_code"] for item in items}
        present = [item for item in items if item["error_code"] != UNKNOWN_TOPIC]
        return TopicsDeleted(
            deleted=tuple(name for name in wanted if codes.get(name) == 0),
            failed=tuple(_failures(present, "topic", "deleting it").values()),
        )

    return await _session(connection, work)


async def _session(
    connection: KafkaConnection, work: Callable[[AIOKafkaAdminClient], Awaitable[T]]
) -> T:
    """Run `work` with a fresh admin client, bounded in time, errors as `TopicsUnavailable`."""
    try:
        async with asyncio.timeout(connection.timeout_seconds):
            options = connection.client_options()
            admin = AIOKafkaAdminClient(bootstrap_servers=connection.bootstrap_servers, **options)
            try:
                await _start(admin, connection.bootstrap_servers, options)
                return await work(admin)
            finally:
                await admin.close()
    except TopicsUnavailable:
        raise
    except TimeoutError as error:
        raise TopicsUnavailable(
            "BrokerTimeout",
            f"no answer from {connection.bootstrap_servers} in time (request timeout "
            f"{connection.request_timeout_seconds:g} s, call timeout "
            f"{connection.timeout_seconds:g} s)",
        ) from error
    except (KafkaError, OSError) as error:
        raise TopicsUnavailable.from_error(error) from error


async def _start(admin: AIOKafkaAdminClient, bootstrap: str, options: dict[str, Any]) -> None:
    """Bootstrap; on failure connect once more ourselves to learn why.

    aiokafka logs each broker's real error (refused, SASL, TLS) and raises a generic
    "Unable to bootstrap", which would make every failure look like an unreachable broker.
    """
    try:
        await admin.start()
    except KafkaConnectionError as error:
        cause = await _diagnose(bootstrap, options)
        raise (cause or TopicsUnavailable.from_error(error)) from error


async def _diagnose(bootstrap: str, options: dict[str, Any]) -> TopicsUnavailable | None:
    """The first broker's connection error; None if every broker now accepts us."""
    for host, port, _ in collect_hosts(bootstrap, randomize=False):
        try:
            connection = await create_conn(host, port, **options)
        except (KafkaError, OSError) as error:
            return TopicsUnavailable.from_error(error, f"{host}:{port}")
        connection.close()
    return None


async def _observe(admin: AIOKafkaAdminClient, names: Collection[str]) -> dict[str, ObservedTopic]:
    """Read topics from the full cluster metadata.

    Asking for the named topics would send a Metadata request that lets the broker auto-create
    missing ones (aiokafka sets allow_auto_topic_creation), with the broker's default size.
    """
    wanted = set(names)
    metadata = [topic for topic in await admin.describe_topics() if topic["topic"] in wanted]
    if not metadata:
        return {}
    configs = await _dynamic_configs(admin, [topic["topic"] for topic in metadata])
    return {
        topic["topic"]: ObservedTopic(
            name=topic["topic"],
            partitions=len(topic["partitions"]),
            replication_factor=_replication_factor(topic["partitions"]),
            config=configs[topic["topic"]],
        )
        for topic in metadata
        if topic["topic"] in configs
    }


def _replication_factor(partitions: list[dict[str, Any]]) -> int:
    """Partition 0's replica count, as kafka-topics.sh reports it."""
    first = min(partitions, key=lambda partition: partition["partition"], default=None)
    return 0 if first is None else len(first["replicas"])


async def _dynamic_configs(
    admin: AIOKafkaAdminClient, names: list[str]
) -> dict[str, dict[str, str]]:
    """Per-topic overrides by topic; a topic deleted since the metadata read is left out."""
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    )
    configs: dict[str, dict[str, str]] = {}
    for resource in _resources(responses):
        code = resource["error_code"]
        if code == UNKNOWN_TOPIC:
            continue
        if code:
            error = for_code(code)
            raise TopicsUnavailable(
                _reason_of(error), resource["error_message"] or error.description
            )
        configs[resource["resource_name"]] = {
            entry["config_names"]: entry["config_value"]
            for entry in resource["config_entries"]
            if entry["config_source"] == DYNAMIC_TOPIC_CONFIG
        }
    return configs


def _resources(responses: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for response in responses:
        yield from response.to_object()["resources"]


async def _apply(
    admin: AIOKafkaAdminClient, topic_plan: TopicPlan, connection: KafkaConnection
) -> Applied:
    timeout_ms = connection.request_timeout_ms
    planned = topic_plan.changes
    create_failures = await _create(admin, planned.create, timeout_ms)
    increase_failures = await _increase(admin, planned.increase, timeout_ms)
    config_failures = await _reconfigure(admin, planned.reconfigure)
    applied = Applied(
        done=Changes(
            create=tuple(t for t in planned.create if t.name not in create_failures),
            increase=tuple(i for i in planned.increase if i.topic not in increase_failures),
            reconfigure=tuple(c for c in planned.reconfigure if c.topic not in config_failures),
        ),
        failed=(
            *create_failures.values(),
            *increase_failures.values(),
            *config_failures.values(),
        ),
    )
    for event in applied.done.events:
        log.info("%s", event.message)
    return applied


async def _create(
    admin: AIOKafkaAdminClient, topics: tuple[DesiredTopic, ...], timeout_ms: int
) -> dict[str, TopicEvent]:
    if not topics:
        return {}
    response = await admin.create_topics(
        [
            NewTopic(t.name, t.partitions, t.replication_factor, topic_configs=dict(t.config))
            for t in topics
        ],
        timeout_ms=timeout_ms,
    )
    return _failures(response.to_object()["topic_errors"], "topic", "creating it")


async def _increase(
    admin: AIOKafkaAdminClient, increases: tuple[PartitionIncrease, ...], timeout_ms: int
) -> dict[str, TopicEvent]:
    """One request per topic: aiokafka raises on the first topic error and drops the others."""
    failures: dict[str, TopicEvent] = {}
    for increase in increases:
        try:
            await admin.create_partitions(
                {increase.topic: NewPartitions(increase.desired)}, timeout_ms=timeout_ms
            )
        except RequestTimedOutError:
            raise
        except BrokerResponseError as error:
            failures[increase.topic] = _failure(
                increase.topic,
                type(error),
                f"raising partitions from {increase.current} to {increase.desired}",
                str(error),
            )
    return failures


async def _reconfigure(
    admin: AIOKafkaAdminClient, changes: tuple[ConfigChange, ...]
) -> dict[str, TopicEvent]:
    if not changes:
        return {}
    responses = await admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, c.topic, dict(c.config)) for c in changes]
    )
    return _failures(_resources(responses), "resource_name", "changing its config")


def _failures(
    items: Iterable[dict[str, Any]], name_key: str, attempt: str
) -> dict[str, TopicEvent]:
    """Per-topic error codes of a response, as events keyed by topic."""
    failures: dict[str, TopicEvent] = {}
    for item in items:
        if item["error_code"]:
            error = for_code(item["error_code"])
            detail = item.get("error_message") or error.description
            failures[item[name_key]] = _failure(item[name_key], error, attempt, detail)
    return failures


def _failure(topic: str, error: type[BaseException], attempt: str, detail: str) -> TopicEvent:
    return TopicEvent(topic, _reason_of(error), f"topic {topic}: {attempt} failed: {detail}")
