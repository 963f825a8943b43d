"""The Kafka admin API: the only module that talks to brokers.

Every call opens its own admin client and closes it, so a broker restart or new credentials need
no special handling, and every call returns or raises within `KafkaConnection.timeout_seconds`.
Not reaching, authenticating to or hearing from Kafka raises `TopicsUnavailable` with a CamelCase
reason for a status condition. An error the broker returns for one topic (an invalid config
value, more replicas than brokers) does not raise: the result reports it for that topic, and the
other topics are still reconciled.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator
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

from ..api import Event
from .model import (
    DesiredTopic,
    KafkaConnection,
    ObservedTopic,
    TopicsDeleted,
    TopicsResult,
    TopicsUnavailable,
)
from .plan import Applied, Changes, ConfigChange, PartitionIncrease, TopicPlan, plan, result, unique

log = logging.getLogger(__name__)

T = TypeVar("T")

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


def unavailable(error: BaseException, where: str = "") -> TopicsUnavailable:
    """Classify an exception from aiokafka or the network; `where` names the broker."""
    reason = next(
        (reason for kinds, reason in _UNAVAILABLE_REASONS if isinstance(error, kinds)),
        _reason_of(type(error)),
    )
    detail = str(error) or type(error).__name__
    return TopicsUnavailable(reason, f"{where}: {detail}" if where else detail)


def _reason_of(error: type[BaseException]) -> str:
    """CamelCase reason from an error class: InvalidPartitionsError -> InvalidPartitions."""
    return error.__name__.removesuffix("Error")


def client_options(connection: KafkaConnection) -> dict[str, Any]:
    """Keyword arguments shared by `AIOKafkaAdminClient` and aiokafka's `create_conn`."""
    options: dict[str, Any] = {
        "client_id": connection.client_id,
        "request_timeout_ms": connection.request_timeout_ms,
        "security_protocol": connection.security_protocol,
    }
    if connection.tls:
        options["ssl_context"] = _ssl_context(connection)
    if connection.sasl_mechanism is not None:
        options["sasl_mechanism"] = connection.sasl_mechanism
        options["sasl_plain_username"] = connection.sasl_username
        options["sasl_plain_password"] = connection.sasl_password
    return options


def _ssl_context(connection: KafkaConnection) -> ssl.SSLContext:
    """System trust unless a CA is given; a bad CA is a TLS problem, not a network one."""
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=connection.tls_ca_file, cadata=connection.tls_ca_pem
        )
        return context
    except (OSError, ValueError) as error:
        detail = f"the TLS CA cannot be used: {error}"
        raise TopicsUnavailable("TlsConfigInvalid", detail) from error


async def reconcile(connection: KafkaConnection, desired: Iterable[DesiredTopic]) -> TopicsResult:
    """Observe, plan and apply in one admin session; nothing is written in steady state."""
    wanted = unique(desired)

    async def work(admin: AIOKafkaAdminClient) -> TopicsResult:
        observed = await _observe(admin, [topic.name for topic in wanted])
        topic_plan = plan(wanted, observed)
        applied = await _apply(admin, topic_plan, connection)
        return result(wanted, observed, topic_plan, applied)

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
            options = client_options(connection)
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
        raise unavailable(error) from error


async def _start(admin: AIOKafkaAdminClient, bootstrap: str, options: dict[str, Any]) -> None:
    """Bootstrap; on failure connect once more ourselves to learn why.

    aiokafka logs each broker's real error (refused, SASL, TLS) and raises a generic
    "Unable to bootstrap", which would make every failure look like an unreachable broker.
    """
    try:
        await admin.start()
    except KafkaConnectionError as error:
        cause = await _diagnose(bootstrap, options)
        raise (cause or unavailable(error)) from error


async def _diagnose(bootstrap: str, options: dict[str, Any]) -> TopicsUnavailable | None:
    """The first broker's connection error; None if every broker now accepts us."""
    for host, port, _ in collect_hosts(bootstrap, randomize=False):
        try:
            connection = await create_conn(host, port, **options)
        except (KafkaError, OSError) as error:
            return unavailable(error, f"{host}:{port}")
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
) -> dict[str, Event]:
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
) -> dict[str, Event]:
    """One request per topic: aiokafka raises on the first topic error and drops the others."""
    failures: dict[str, Event] = {}
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
) -> dict[str, Event]:
    if not changes:
        return {}
    responses = await admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, c.topic, dict(c.config)) for c in changes]
    )
    return _failures(_resources(responses), "resource_name", "changing its config")


def _failures(items: Iterable[dict[str, Any]], name_key: str, attempt: str) -> dict[str, Event]:
    """Per-topic error codes of a response, as events keyed by topic."""
    failures: dict[str, Event] = {}
    for item in items:
        if item["error_code"]:
            error = for_code(item["error_code"])
            detail = item.get("error_message") or error.description
            failures[item[name_key]] = _failure(item[name_key], error, attempt, detail)
    return failures


def _failure(topic: str, error: type[BaseException], attempt: str, detail: str) -> Event:
    return Event("Warning", _reason_of(error), f"topic {topic}: {attempt} failed: {detail}")
