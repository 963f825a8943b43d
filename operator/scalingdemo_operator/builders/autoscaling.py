"""KEDA ScaledObjects, the Kafka TriggerAuthentication and VerticalPodAutoscalers.

Everything here encodes a fact from DESIGN.md: every trigger metadata value is a string; Kafka
triggers take brokers, group and topic from the same names the workload uses (so the measured
lag is the workload's lag) and always set offsetResetPolicy to the consumers' auto.offset.reset;
Prometheus queries are aggregated to one element and scoped to this demo's pods; credentials
are referenced from Secrets, never copied. A VPA never controls a resource that a cpu/memory
trigger scales on: both would act on the same requests and fight.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from scalingdemo_workload.contract import Env, Metric

from . import env
from .common import Manifest, Owner, metadata, stamp
from .workload import CONTAINER

if TYPE_CHECKING:
    from ..spec import (
        Autoscaling,
        Component,
        KafkaLagTrigger,
        PrometheusTrigger,
        ResourceTrigger,
        ScalingDemoSpec,
        Trigger,
    )

KEDA_API_VERSION = "keda.sh/v1alpha1"
VPA_API_VERSION = "autoscaling.k8s.io/v1"
SCALED_OBJECT_NAME_LIMIT = 54
"""KEDA names the HPA keda-hpa-<name>, which must fit in 63 characters."""
KEDA_HPA_PREFIX = "keda-hpa-"
POLLING_INTERVAL_SECONDS = 15
"""pollingInterval where it applies and the spec leaves it out (KEDA's own default is 30)."""
COOLDOWN_PERIOD_SECONDS = 300
"""cooldownPeriod where it applies and the spec leaves it out (KEDA's own default too)."""
COMPONENTS = ("api", "worker")
RESOURCES = ("cpu", "memory")
SASL_MECHANISMS = {
    "PLAIN": "plaintext",
    "SCRAM-SHA-256": "scram_sha256",
    "SCRAM-SHA-512": "scram_sha512",
}
"""spec.kafka.auth.sasl.mechanism -> KEDA's `sasl` metadata value."""
TOPIC_KEYS = {
    "messages": (Env.MESSAGES_TOPIC, Env.MESSAGES_GROUP),
    "tasks": (Env.TASKS_TOPIC, Env.TASKS_GROUP),
}
RATE_WINDOW = "1m"


def _text(value: bool | int | str) -> str:
    """KEDA refuses non-string metadata; booleans as Go parses them."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def trigger_authentication_name(owner: Owner) -> str:
    return f"{owner.name}-kafka"


def scope(
    owner: Owner,
    components: Sequence[str] = COMPONENTS,
    *,
    label: str = "service",
    prefix: str = "",
) -> str:
    """PromQL label matchers for this demo's pods (the labels Kubernetes discovery adds).

    Other exporters name the demo's objects in other labels: kube-state-metrics puts a
    Deployment's name in `deployment` and an HPA's (KEDA's `keda-hpa-<name>`) in
    `horizontalpodautoscaler`, hence `label` and `prefix`.
    """
    names = "|".join(f"{prefix}{owner.child_name(name)}" for name in components)
    return f'namespace="{owner.namespace}", {label}=~"{names}"'


def rate(metric: str, labels: str) -> str:
    """Per-second rate over the window the triggers use, so panels show what KEDA sees."""
    return f"rate({metric}{{{labels}}}[{RATE_WINDOW}])"


def quantile(value: float, histogram: str, labels: str, by: Sequence[str] = ()) -> str:
    """A quantile of a histogram over every pod: buckets are summed before interpolating."""
    grouping = ", ".join(("le", *by))
    return (
        f"histogram_quantile({value}, sum by ({grouping}) ({rate(f'{histogram}_bucket', labels)}))"
    )


def lag(labels: str, by: Sequence[str] = ()) -> str:
    """Consumer lag, de-duplicated with max per (topic, group) before summing.

    Every consumer reports its group's whole lag, so summing the raw series would multiply the
    backlog by the replica count.
    """
    head = f"sum by ({', '.join(by)}) " if by else "sum"
    return f"{head}(max by (topic, group) ({Metric.CONSUMER_LAG}{{{labels}}}))"


def topic_lag(spec: ScalingDemoSpec, owner: Owner, topic: str) -> str:
    """The lag of one topic's consumer group (spec topic key `messages` or `tasks`)."""
    topic_key, group_key = TOPIC_KEYS[topic]
    names = env.kafka_names(spec, owner)
    return lag(f'{scope(owner)}, topic="{names[topic_key]}", group="{names[group_key]}"')


def preset_query(spec: ScalingDemoSpec, owner: Owner, preset: str) -> str:
    """A named query over the workload's own metrics, aggregated to the one element KEDA needs."""
    labels = scope(owner)
    if preset == "queueDepth":
        return topic_lag(spec, owner, "tasks")
    if preset == "tasksInProgress":
        return f"sum({Metric.TASKS_IN_PROGRESS}{{{labels}}})"
    if preset == "requestRate":
        return f"sum({rate(Metric.HTTP_REQUESTS, labels)})"
    return quantile(0.95, Metric.HTTP_REQUEST_DURATION, labels)


def trigger_query(spec: ScalingDemoSpec, owner: Owner, prometheus: PrometheusTrigger) -> str:
    """The query a prometheus trigger runs: the user's own, or the preset's."""
    return prometheus.query or preset_query(spec, owner, str(prometheus.preset))


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
    topic_key, group_key = TOPIC_KEYS[lag.topic]
    names = env.kafka_names(spec, owner)
    found = {
        "bootstrapServers": qualified_brokers(spec.kafka.bootstrap_servers, owner.namespace),
        "consumerGroup": names[group_key],
        "topic": names[topic_key],
        "lagThreshold": _text(lag.lag_threshold),
        "activationLagThreshold": _text(lag.activation_lag_threshold),
        "offsetResetPolicy": spec.kafka.offset_reset,
        "allowIdleConsumers": _text(lag.allow_idle_consumers),
        "limitToPartitionsWithLag": _text(lag.limit_to_partitions_with_lag),
    }
    auth = spec.kafka.auth
    if auth and auth.sasl:
        found["sasl"] = SASL_MECHANISMS[auth.sasl.mechanism]
    if auth and auth.tls and auth.tls.enabled:
        found["tls"] = "enable"
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


def _dump(model: Any) -> Any:
    """A spec section in the API's shape: camelCase, unset fields and empty lists left out."""
    return {
        key: value
        for key, value in model.model_dump(by_alias=True, exclude_none=True).items()
        if value != []
    }


def _advanced(autoscaling: Autoscaling) -> dict[str, Any]:
    advanced: dict[str, Any] = {}
    behavior = autoscaling.behavior
    if behavior is not None:
        rules = {
            direction: _dump(value)
            for direction, value in (
                ("scaleUp", behavior.scale_up),
                ("scaleDown", behavior.scale_down),
            )
            if value is not None
        }
        advanced["horizontalPodAutoscalerConfig"] = {"behavior": rules}
    if autoscaling.scaling_modifiers is not None:
        advanced["scalingModifiers"] = _dump(autoscaling.scaling_modifiers)
    return advanced


def _timing(autoscaling: Autoscaling) -> dict[str, int]:
    """pollingInterval and cooldownPeriod where KEDA uses them, or where the user set them.

    KEDA's admission webhook warns about either one that cannot matter: pollingInterval when
    the HPA drives the queries (minReplicas >= 1 and no scaling formula), cooldownPeriod when
    nothing scales to zero (minReplicas >= 1). A value the user wrote is passed on regardless.
    """
    scales_to_zero = autoscaling.min_replicas == 0
    polled = scales_to_zero or autoscaling.scaling_modifiers is not None
    chosen = {
        "pollingInterval": (autoscaling.polling_interval, polled, POLLING_INTERVAL_SECONDS),
        "cooldownPeriod": (autoscaling.cooldown_period, scales_to_zero, COOLDOWN_PERIOD_SECONDS),
    }
    return {
        key: value if value is not None else default
        for key, (value, applies, default) in chosen.items()
        if value is not None or applies
    }


def scaled_object(spec: ScalingDemoSpec, owner: Owner, name: str) -> Manifest:
    """The component's ScaledObject: it scales the Deployment the operator leaves replicas of."""
    autoscaling = getattr(spec, name).autoscaling
    object_name = owner.child_name(name)
    if len(object_name) > SCALED_OBJECT_NAME_LIMIT:
        raise ValueError(f"ScaledObject name {object_name} exceeds {SCALED_OBJECT_NAME_LIMIT}")
    scaled: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": object_name},
        **_timing(autoscaling),
        "minReplicaCount": autoscaling.min_replicas,
        "maxReplicaCount": autoscaling.max_replicas,
    }
    advanced = _advanced(autoscaling)
    if advanced:
        scaled["advanced"] = advanced
    if autoscaling.fallback is not None:
        scaled["fallback"] = _dump(autoscaling.fallback)
    scaled["triggers"] = [_trigger(spec, owner, trigger) for trigger in autoscaling.triggers]
    return stamp(
        {
            "apiVersion": KEDA_API_VERSION,
            "kind": "ScaledObject",
            "metadata": metadata(owner, name, object_name),
            "spec": scaled,
        }
    )


def needs_trigger_authentication(spec: ScalingDemoSpec) -> bool:
    """Only Kafka triggers authenticate, and only when spec.kafka.auth is set."""
    return spec.kafka.auth is not None and any(
        trigger.kafka_lag is not None
        for name in autoscaled(spec)
        for trigger in getattr(spec, name).autoscaling.triggers
    )


def trigger_authentication(spec: ScalingDemoSpec, owner: Owner) -> Manifest:
    """Secret references for the Kafka triggers: KEDA reads the same Secrets as the workload."""
    auth = spec.kafka.auth
    references = []
    if auth and auth.sasl:
        references += [
            {"parameter": "username", "name": auth.sasl.secret_name, "key": auth.sasl.username_key},
            {"parameter": "password", "name": auth.sasl.secret_name, "key": auth.sasl.password_key},
        ]
    if auth and auth.tls and auth.tls.enabled and auth.tls.ca_secret_name:
        references.append(
            {"parameter": "ca", "name": auth.tls.ca_secret_name, "key": auth.tls.ca_key}
        )
    return stamp(
        {
            "apiVersion": KEDA_API_VERSION,
            "kind": "TriggerAuthentication",
            "metadata": metadata(owner, "kafka", trigger_authentication_name(owner)),
            "spec": {"secretTargetRef": references},
        }
    )


def resources_left_to_triggers(component: Component) -> list[str]:
    """Resources the VPA would control but a cpu/memory trigger scales on: the VPA drops them."""
    if not component.autoscaling.enabled:
        return []
    triggered = {trigger.kind for trigger in component.autoscaling.triggers}
    return [
        resource
        for resource in component.vertical_scaling.controlled_resources
        if resource in triggered
    ]


def partition_caps(
    spec: ScalingDemoSpec, owner: Owner, actual: Mapping[str, int] | None = None
) -> list[str]:
    """Lag triggers that KEDA silently stops at the topic's partition count, below maxReplicas.

    Without allowIdleConsumers KEDA never asks for more replicas than partitions (the extra
    consumers would idle), so a maxReplicas above it is not what the demo will show. `actual`
    holds partition counts the broker reported by topic name; they win over the spec's (a topic
    may have more partitions than the spec, which Kafka cannot shrink).
    """
    names = env.kafka_names(spec, owner)
    found = []
    for name in autoscaled(spec):
        bounds = getattr(spec, name).autoscaling
        for trigger in bounds.triggers:
            lag = trigger.kafka_lag
            if lag is None or lag.allow_idle_consumers:
                continue
            topic = names[TOPIC_KEYS[lag.topic][0]]
            partitions = (actual or {}).get(topic, getattr(spec.kafka.topics, lag.topic).partitions)
            if bounds.max_replicas > partitions:
                found.append(
                    f"{owner.child_name(name)} trigger {trigger.name} scales to at most the "
                    f"{partitions} partitions of topic {topic}, not maxReplicas "
                    f"{bounds.max_replicas}: add partitions or set allowIdleConsumers"
                )
    return found


def vertical_pod_autoscaler(spec: ScalingDemoSpec, owner: Owner, name: str) -> Manifest:
    """The component's VPA; a container policy with mode Off when nothing is left to control."""
    component: Component = getattr(spec, name)
    vertical = component.vertical_scaling
    dropped = resources_left_to_triggers(component)
    controlled = [item for item in vertical.controlled_resources if item not in dropped]
    policy: dict[str, Any] = {"containerName": CONTAINER}
    if controlled:
        policy["controlledResources"] = controlled
        policy["controlledValues"] = vertical.controlled_values
        for key, bounds in (
            ("minAllowed", vertical.min_allowed),
            ("maxAllowed", vertical.max_allowed),
        ):
            present = _dump(bounds) if bounds is not None else {}
            if present:
                policy[key] = present
    else:
        policy["mode"] = "Off"
    return stamp(
        {
            "apiVersion": VPA_API_VERSION,
            "kind": "VerticalPodAutoscaler",
            "metadata": metadata(owner, name, owner.child_name(name)),
            "spec": {
                "targetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": owner.child_name(name),
                },
                "updatePolicy": {"updateMode": vertical.update_mode},
                "resourcePolicy": {"containerPolicies": [policy]},
            },
        }
    )


def autoscaled(spec: ScalingDemoSpec) -> list[str]:
    """Enabled components with autoscaling on."""
    return [name for name, item in spec.components().items() if item.autoscaling.enabled]


def vertically_scaled(spec: ScalingDemoSpec) -> list[str]:
    """Enabled components with a VPA."""
    return [name for name, item in spec.components().items() if item.vertical_scaling.enabled]
