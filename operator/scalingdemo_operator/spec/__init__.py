"""Typed view of a ScalingDemo spec.

The CRD in crds/ is the source of truth for the schema; this model mirrors it (a unit test walks
both and fails on any difference in names, defaults, enums or bounds) so the builders get typed,
defaulted values even when a spec did not pass through the API server (unit tests, benchmarks).
Cross-field checks that need knowledge the CRD does not have live in `problems`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError
from scalingdemo_workload.contract import Env

from ..api import Owner
from ..quantities import amount
from .base import (
    DURATION_PATTERN,
    QUANTITY_PATTERN,
    QuantitiesModel,
    Quantity,
    SpecError,
    SpecModel,
)
from .kafka import (
    TOPIC_ROLES,
    Kafka,
    KafkaAuth,
    KafkaNames,
    SaslMechanism,
    SecretReference,
)
from .scaling import (
    Autoscaling,
    KafkaLagTrigger,
    PrometheusPreset,
    PrometheusTrigger,
    ResourceTrigger,
    Trigger,
    VerticalScaling,
)

__all__ = [
    "RESERVED_ENV",
    "TOPIC_ROLES",
    "Autoscaling",
    "Component",
    "Kafka",
    "KafkaAuth",
    "KafkaLagTrigger",
    "KafkaNames",
    "PrometheusPreset",
    "PrometheusTrigger",
    "ResourceTrigger",
    "SaslMechanism",
    "ScalingDemoSpec",
    "SecretReference",
    "SpecError",
    "Trigger",
    "parse",
    "problems",
]

RESERVED_ENV = frozenset(
    {
        Env.ROLE,
        Env.PORT,
        Env.SERVICE_NAME,
        Env.POD_NAME,
        Env.LOG_LEVEL,
        Env.BOOTSTRAP_SERVERS,
        Env.MESSAGES_TOPIC,
        Env.TASKS_TOPIC,
        Env.MESSAGES_GROUP,
        Env.TASKS_GROUP,
        Env.OFFSET_RESET,
        Env.TASK_CONCURRENCY,
        Env.SECURITY_PROTOCOL,
        Env.SASL_MECHANISM,
        Env.SASL_USERNAME,
        Env.SASL_USERNAME_FILE,
        Env.SASL_PASSWORD,
        Env.SASL_PASSWORD_FILE,
        Env.TLS_CA_FILE,
    }
)
"""Workload variables the operator derives from the spec (builders/env.py sets them): a user
may not set them through spec.<component>.env, where they would silently fight the spec."""


class Requests(QuantitiesModel):
    cpu: Quantity = Field("100m", pattern=QUANTITY_PATTERN)
    memory: Quantity = Field("128Mi", pattern=QUANTITY_PATTERN)


class Limits(QuantitiesModel):
    cpu: Quantity = Field(None, pattern=QUANTITY_PATTERN)
    memory: Quantity = Field("256Mi", pattern=QUANTITY_PATTERN)


class Resources(SpecModel):
    requests: Requests = Requests()
    limits: Limits = Limits()


class EnvVar(SpecModel):
    name: str = Field(max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str = Field("", max_length=4096)


class Component(SpecModel):
    enabled: bool = True
    replicas: int = Field(1, ge=0, le=100)
    resources: Resources = Resources()
    env: list[EnvVar] = Field(default_factory=list, max_length=64)
    autoscaling: Autoscaling = Autoscaling()
    vertical_scaling: VerticalScaling = VerticalScaling()

    def resources_left_to_triggers(self) -> list[str]:
        """Resources the VPA would control but a cpu/memory trigger scales on: the VPA drops
        them, since both would act on the same requests and fight."""
        if not self.autoscaling.enabled:
            return []
        triggered = {trigger.kind for trigger in self.autoscaling.triggers}
        return [
            resource
            for resource in self.vertical_scaling.controlled_resources
            if resource in triggered
        ]


class Worker(Component):
    concurrency: int = Field(4, ge=1, le=256)


class Prometheus(SpecModel):
    server_address: str = Field(max_length=1024, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")


class ServiceMonitor(SpecModel):
    enabled: bool = True
    labels: dict[str, str] = Field(default_factory=dict, max_length=16)
    interval: str = Field("15s", min_length=2, pattern=DURATION_PATTERN)


class Dashboard(SpecModel):
    enabled: bool = True
    labels: dict[str, str] = Field(
        default_factory=lambda: {"grafana_dashboard": "1"}, max_length=16
    )
    folder: str = Field("ScalingDemo", min_length=1, max_length=253)
    folder_annotation: str = Field("k8s-sidecar-target-directory", min_length=1, max_length=253)


class Alerts(SpecModel):
    enabled: bool = False
    labels: dict[str, str] = Field(default_factory=dict, max_length=16)
    not_ready_for: str = Field("10m", min_length=2, pattern=DURATION_PATTERN)


class Monitoring(SpecModel):
    prometheus: Prometheus | None = None
    service_monitor: ServiceMonitor = ServiceMonitor()
    pod_annotations: bool = True
    dashboard: Dashboard = Dashboard()
    alerts: Alerts = Alerts()


class ScalingDemoSpec(SpecModel):
    image: str = Field(min_length=1, max_length=512)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    kafka: Kafka
    api: Component = Component()
    worker: Worker = Worker()
    monitoring: Monitoring = Monitoring()

    def components(self) -> dict[str, Component]:
        """The enabled components by name, in a stable order."""
        return {
            name: component
            for name, component in (("api", self.api), ("worker", self.worker))
            if component.enabled
        }

    def component(self, name: str) -> Component:
        """A component by name (api, worker), enabled or not."""
        found: Component = getattr(self, name)
        return found

    def autoscaled(self) -> list[str]:
        """Enabled components with autoscaling on."""
        return [name for name, item in self.components().items() if item.autoscaling.enabled]

    def vertically_scaled(self) -> list[str]:
        """Enabled components with a VPA."""
        return [name for name, item in self.components().items() if item.vertical_scaling.enabled]

    def service_monitored(self) -> list[str]:
        """Enabled components that get a ServiceMonitor."""
        return list(self.components()) if self.monitoring.service_monitor.enabled else []

    def kafka_names(self, owner: Owner) -> KafkaNames:
        """Topic and group names, defaulting to names unique per ScalingDemo on a shared
        cluster: the workload, the topic reconcile, KEDA and the dashboard all use these."""
        prefix = f"{owner.namespace}-{owner.name}"
        topics, groups = self.kafka.topics, self.kafka.consumer_groups
        return KafkaNames(
            topics={role: getattr(topics, role).name or f"{prefix}-{role}" for role in TOPIC_ROLES},
            groups={
                role: getattr(groups, role) or f"{prefix}-{role}-consumer" for role in TOPIC_ROLES
            },
        )


def _location(loc: tuple[int | str, ...]) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse(raw: Mapping[str, Any]) -> ScalingDemoSpec:
    """Validate a raw spec; the error lists every problem with the field it concerns."""
    try:
        spec = ScalingDemoSpec.model_validate(raw)
    except ValidationError as error:
        raise SpecError(
            [f"{_location(item['loc'])}: {item['msg']}" for item in error.errors()]
        ) from None
    found = problems(spec)
    if found:
        raise SpecError(found)
    return spec


def problems(spec: ScalingDemoSpec) -> list[str]:
    """Cross-field rules the CRD cannot express because they need the workload contract.

    The operator owns every `SCALINGDEMO_*` variable it derives from the spec; a user-supplied
    variable of the same name would silently fight the spec, so it is refused instead. The CRD
    repeats the at-least-one-component rule in CEL; it is checked here too because specs built
    in Python (tests, benchmarks) never pass through the API server.
    """
    found = []
    if not spec.components():
        found.append("spec.api.enabled: at least one of spec.api and spec.worker must be enabled")
    for name, component in (("api", spec.api), ("worker", spec.worker)):
        for index, variable in enumerate(component.env):
            if variable.name in RESERVED_ENV:
                found.append(
                    f"spec.{name}.env[{index}].name: {variable.name} is set by the operator from "
                    "the spec; change the corresponding spec field instead"
                )
        if component.autoscaling.enabled:
            found += _trigger_problems(spec, name, component)
    return found


def _requested(component: Component, resource: str) -> bool:
    request = getattr(component.resources.requests, resource)
    return request is not None and amount(request) > 0


def _trigger_problems(spec: ScalingDemoSpec, name: str, component: Component) -> list[str]:
    """Triggers that KEDA would accept but that cannot scale this component correctly.

    Lag only shrinks when the scaled pods consume (the API consumes only without a worker);
    KEDA's offsetResetPolicy must match the consumer's auto.offset.reset or an empty group's lag
    is misjudged; Prometheus triggers need a server; cpu/memory triggers are percentages of
    the container's requests.
    """
    found = []
    for index, trigger in enumerate(component.autoscaling.triggers):
        where = f"spec.{name}.autoscaling.triggers[{index}]"
        lag, kind = trigger.kafka_lag, trigger.kind
        if lag is not None and name == "api" and spec.worker.enabled:
            found.append(
                f"{where}.kafkaLag: the api component does not consume while the worker is "
                "enabled; put lag triggers on spec.worker"
            )
        if lag and lag.offset_reset_policy not in (None, spec.kafka.offset_reset):
            found.append(
                f"{where}.kafkaLag.offsetResetPolicy: must equal spec.kafka.offsetReset "
                f"({spec.kafka.offset_reset}), the consumers' auto.offset.reset"
            )
        if lag is not None:
            found += _partition_limitation_problems(spec, f"{where}.kafkaLag", lag)
        if trigger.prometheus is not None and spec.monitoring.prometheus is None:
            found.append(
                f"{where}.prometheus: needs spec.monitoring.prometheus.serverAddress to query"
            )
        if kind in ("cpu", "memory") and not _requested(component, kind):
            found.append(
                f"{where}.{kind}: needs spec.{name}.resources.requests.{kind} above 0 (the "
                "trigger's target is a share of it)"
            )
    return found


def _partition_limitation_problems(
    spec: ScalingDemoSpec, where: str, lag: KafkaLagTrigger
) -> list[str]:
    """Partition IDs the topic does not have: KEDA would silently count no lag for them."""
    partitions = getattr(spec.kafka.topics, lag.topic).partitions
    beyond = [last for _, last in lag.partition_ranges() if last >= partitions]
    if not beyond:
        return []
    return [
        f"{where}.partitionLimitation: partition {max(beyond)} does not exist; the {lag.topic} "
        f"topic has partitions 0-{partitions - 1} (spec.kafka.topics.{lag.topic}.partitions)"
    ]
