"""KEDA ScaledObjects and the Kafka TriggerAuthentication.

Everything here encodes a fact from DESIGN.md: every trigger metadata value is a string; Kafka
triggers take brokers, group and topic from the same names the workload uses (so the measured
lag is the workload's lag) and always set offsetResetPolicy to the consumers' auto.offset.reset;
Prometheus queries come from `promql`, aggregated to one element and scoped to this demo's
pods; credentials are referenced from the Secrets the spec names, never copied.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from ..api import CHILDREN, Manifest, Owner
from ..spec import (
    Autoscaling,
    KafkaLagTrigger,
    PrometheusTrigger,
    ResourceTrigger,
    SaslMechanism,
    ScalingDemoSpec,
    SecretReference,
    Trigger,
)
from .common import api_shape, metadata, stamp
from .promql import trigger_query
from .workload import CONTAINER

KEDA_API_VERSION = CHILDREN["ScaledObject"].api_version()
SCALED_OBJECT_NAME_LIMIT = 54
"""KEDA names the HPA keda-hpa-<name>, which must fit in 63 characters."""
POLLING_INTERVAL_SECONDS = 15
"""pollingInterval where it applies and the spec leaves it out (KEDA's own default is 30)."""
COOLDOWN_PERIOD_SECONDS = 300
"""cooldownPeriod where it applies and the spec leaves it out (KEDA's own default too)."""
PAUSED_REPLICAS_ANNOTATION = "autoscaling.keda.sh/paused-replicas"
"""KEDA holds a ScaledObject's target at this count and stops scaling while it is present."""
SASL_MECHANISMS: Mapping[SaslMechanism, str] = {
    "PLAIN": "plaintext",
    "SCRAM-SHA-256": "scram_sha256",
    "SCRAM-SHA-512": "scram_sha512",
}
"""spec.kafka.auth.sasl.mechanism -> KEDA's `sasl` metadata value (a unit test holds the keys
to the spec's SaslMechanism)."""


def _text(value: bool | int | str) -> str:
    """KEDA refuses non-string metadata; booleans as Go parses them."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def trigger_authentication_name(owner: Owner) -> str:
    return f"{owner.name}-kafka"


def qualified_brokers(bootstrap_servers: str, namespace: str) -> str:
    """Broker addresses KEDA can resolve from its own namespace.

    The workload runs beside the demo, where a short Service name works; KEDA's
    operator runs in another namespace, where it does not (one of the seed's bugs).
    `kafka` becomes `kafka.<namespace>.svc`, `kafka.infra` becomes `kafka.infra.svc`;
    IP addresses and names with a `.svc` part or more labels are kept as given.
    """
    qualified = []
    for server in bootstrap_servers.split(","):
        host, separator, port = server.strip().rpartition(":")
        if not separator:
            host, port = port, ""
        labels = host.split(".")
        if _is_ip(host) or "svc" in labels or len(labels) > 2:
            qualified.append(server.strip())
            continue
        full = f"{host}.{namespace}.svc" if len(labels) == 1 else f"{host}.svc"
        qualified.append(f"{full}:{port}" if port else full)
    return ",".join(qualified)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _kafka_metadata(spec: ScalingDemoSpec, owner: Owner, lag: KafkaLagTrigger) -> dict[str, str]:
    names = spec.kafka_names(owner)
    found = {
        "bootstrapServers": qualified_brokers(spec.kafka.bootstrap_servers, owner.namespace),
        "consumerGroup": names.groups[lag.topic],
        "topic": names.topics[lag.topic],
        "lagThreshold": _text(lag.lag_threshold),
        "activationLagThreshold": _text(lag.activation_lag_threshold),
        "offsetResetPolicy": spec.kafka.offset_reset,
        "allowIdleConsumers": _text(lag.allow_idle_consumers),
        "limitToPartitionsWithLag": _text(lag.limit_to_partitions_with_lag),
        **_kafka_options(lag),
    }
    auth = spec.kafka.auth
    if auth and auth.sasl:
        found["sasl"] = SASL_MECHANISMS[auth.sasl.mechanism]
    if auth and auth.tls_enabled:
        found["tls"] = "enable"
    return found


def _kafka_options(lag: KafkaLagTrigger) -> dict[str, str]:
    """The kafka scaler's optional settings, written only when set: KEDA's defaults are the
    fields' defaults, and ScaledObjects of specs that do not use them stay as they were."""
    switches = {
        "ensureEvenDistributionOfPartitions": lag.ensure_even_distribution_of_partitions,
        "excludePersistentLag": lag.exclude_persistent_lag,
        "scaleToZeroOnInvalidOffset": lag.scale_to_zero_on_invalid_offset,
    }
    found = {key: _text(value) for key, value in switches.items() if value}
    if lag.partition_limitation is not None:
        found["partitionLimitation"] = lag.partition_limitation
    return found


def _prometheus_metadata(
    spec: ScalingDemoSpec, owner: Owner, prometheus: PrometheusTrigger
) -> dict[str, str]:
    server = spec.monitoring.prometheus
    if server is None:
        raise ValueError("prometheus triggers need spec.monitoring.prometheus (spec.problems)")
    return {
        "serverAddress": server.server_address,
        "query": trigger_query(spec, owner, prometheus),
        "threshold": prometheus.threshold,
        "activationThreshold": prometheus.activation_threshold,
        "ignoreNullValues": _text(prometheus.ignore_null_values),
    }


def _trigger(spec: ScalingDemoSpec, owner: Owner, trigger: Trigger) -> dict[str, Any]:
    if trigger.kafka_lag is not None:
        result: dict[str, Any] = {
            "type": "kafka",
            "name": trigger.name,
            "metadata": _kafka_metadata(spec, owner, trigger.kafka_lag),
        }
        if spec.kafka.auth is not None:
            result["authenticationRef"] = {"name": trigger_authentication_name(owner)}
        return result
    if trigger.prometheus is not None:
        return {
            "type": "prometheus",
            "name": trigger.name,
            "metadata": _prometheus_metadata(spec, owner, trigger.prometheus),
        }
    resource: ResourceTrigger = getattr(trigger, trigger.kind)
    return {
        "type": trigger.kind,
        "name": trigger.name,
        "metricType": resource.metric_type,
        "metadata": {"value": resource.value, "containerName": CONTAINER},
    }


def _advanced(autoscaling: Autoscaling) -> dict[str, Any]:
    advanced: dict[str, Any] = {}
    behavior = autoscaling.behavior
    if behavior is not None:
        rules = {
            direction: api_shape(value)
            for direction, value in (
                ("scaleUp", behavior.scale_up),
                ("scaleDown", behavior.scale_down),
            )
            if value is not None
        }
        advanced["horizontalPodAutoscalerConfig"] = {"behavior": rules}
    if autoscaling.scaling_modifiers is not None:
        advanced["scalingModifiers"] = api_shape(autoscaling.scaling_modifiers)
    return advanced


def _timing(autoscaling: Autoscaling) -> dict[str, int]:
    """pollingInterval and cooldownPeriod where KEDA uses them, or where the user set them.

    KEDA's admission webhook warns about either one that cannot matter: pollingInterval when
    the HPA drives the queries (minReplicas >= 1 and no scaling formula), cooldownPeriod when
    nothing scales to zero or idles (minReplicas >= 1, no idleReplicaCount). A value the user
    wrote is passed on regardless.
    """
    idles = autoscaling.idles
    polled = idles or autoscaling.scaling_modifiers is not None
    chosen = {
        "pollingInterval": (autoscaling.polling_interval, polled, POLLING_INTERVAL_SECONDS),
        "cooldownPeriod": (autoscaling.cooldown_period, idles, COOLDOWN_PERIOD_SECONDS),
    }
    return {
        key: value if value is not None else default
        for key, (value, applies, default) in chosen.items()
        if value is not None or applies
    }


def _idling(autoscaling: Autoscaling) -> dict[str, int]:
    """idleReplicaCount and initialCooldownPeriod, only when the spec sets them."""
    chosen = {
        "idleReplicaCount": autoscaling.idle_replica_count,
        "initialCooldownPeriod": autoscaling.initial_cooldown_period,
    }
    return {key: value for key, value in chosen.items() if value is not None}


def scaled_object(spec: ScalingDemoSpec, owner: Owner, name: str) -> Manifest:
    """The component's ScaledObject: it scales the Deployment the operator leaves replicas of."""
    autoscaling = spec.component(name).autoscaling
    object_name = owner.child_name(name)
    if len(object_name) > SCALED_OBJECT_NAME_LIMIT:
        raise ValueError(f"ScaledObject name {object_name} exceeds {SCALED_OBJECT_NAME_LIMIT}")
    scaled: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": object_name},
        **_timing(autoscaling),
        **_idling(autoscaling),
        "minReplicaCount": autoscaling.min_replicas,
        "maxReplicaCount": autoscaling.max_replicas,
    }
    advanced = _advanced(autoscaling)
    if advanced:
        scaled["advanced"] = advanced
    if autoscaling.fallback is not None:
        scaled["fallback"] = api_shape(autoscaling.fallback)
    scaled["triggers"] = [_trigger(spec, owner, trigger) for trigger in autoscaling.triggers]
    meta = metadata(owner, name, object_name)
    if autoscaling.paused_replicas is not None:
        meta["annotations"] = {PAUSED_REPLICAS_ANNOTATION: str(autoscaling.paused_replicas)}
    return stamp(
        {"apiVersion": KEDA_API_VERSION, "kind": "ScaledObject", "metadata": meta, "spec": scaled}
    )


def needs_trigger_authentication(spec: ScalingDemoSpec) -> bool:
    """Only Kafka triggers authenticate, and only when spec.kafka.auth is set."""
    return spec.kafka.auth is not None and any(
        trigger.kafka_lag is not None
        for name in spec.autoscaled()
        for trigger in spec.component(name).autoscaling.triggers
    )


def _credentials(spec: ScalingDemoSpec) -> list[tuple[str, SecretReference]]:
    """KEDA's parameter name for each credential in spec.kafka.auth."""
    auth = spec.kafka.auth
    found: list[tuple[str, SecretReference]] = []
    if auth is not None and auth.sasl is not None:
        found += [
            ("username", auth.sasl.username_reference),
            ("password", auth.sasl.password_reference),
        ]
    if auth is not None and auth.ca_reference is not None:
        found.append(("ca", auth.ca_reference))
    return found


def trigger_authentication(spec: ScalingDemoSpec, owner: Owner) -> Manifest:
    """Secret references for the Kafka triggers: KEDA reads the same Secrets as the workload."""
    references = [
        {"parameter": parameter, "name": secret, "key": key}
        for parameter, (secret, key) in _credentials(spec)
    ]
    return stamp(
        {
            "apiVersion": KEDA_API_VERSION,
            "kind": "TriggerAuthentication",
            "metadata": metadata(owner, "kafka", trigger_authentication_name(owner)),
            "spec": {"secretTargetRef": references},
        }
    )
