"""Typed view of a ScalingDemo spec.

The CRD in crds/ is the source of truth for the schema; this model mirrors it (a unit test walks
both and fails on any difference in names, defaults, enums or bounds) so the builders get typed,
defaulted values even when a spec did not pass through the API server (unit tests, benchmarks).
Cross-field checks that need knowledge the CRD does not have live in `problems`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .builders.env import MANAGED_ENV

Quantity = str | None
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
"""Kubernetes' resource.Quantity syntax, as in the CRD."""
NUMBER_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
"""A non-negative decimal, as KEDA parses thresholds (they travel as strings)."""
DURATION_PATTERN = r"^(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$"
"""A duration as the Prometheus Operator's ServiceMonitor schema accepts it (units in order)."""
TRIGGER_NAME_PATTERN = r"^[a-z][a-zA-Z0-9_]*$"
"""Identifier-safe: scalingModifiers formulas refer to triggers by name."""
TRIGGER_KINDS = ("kafka_lag", "prometheus", "cpu", "memory")


class SpecError(ValueError):
    """The spec cannot be used; each entry of `problems` names the offending field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Model(BaseModel):
    """camelCase aliases like the CRD, immutable, unknown fields refused (they mean drift)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class TopicSpec(_Model):
    name: str | None = Field(None, min_length=1, max_length=249, pattern=r"^[a-zA-Z0-9._-]+$")
    partitions: int = Field(6, ge=1, le=1000)
    replication_factor: int = Field(1, ge=1, le=10)
    config: dict[str, str] = Field(default_factory=dict, max_length=32)


class Topics(_Model):
    messages: TopicSpec = TopicSpec()
    tasks: TopicSpec = TopicSpec()


class ConsumerGroups(_Model):
    messages: str | None = Field(None, min_length=1, max_length=255)
    tasks: str | None = Field(None, min_length=1, max_length=255)


class SaslAuth(_Model):
    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
    secret_name: str = Field(min_length=1, max_length=253)
    username_key: str = Field("username", min_length=1)
    password_key: str = Field("password", min_length=1)


class TlsAuth(_Model):
    enabled: bool = True
    ca_secret_name: str | None = Field(None, min_length=1, max_length=253)
    ca_key: str = Field("ca.crt", min_length=1)


class KafkaAuth(_Model):
    sasl: SaslAuth | None = None
    tls: TlsAuth | None = None

    @property
    def security_protocol(self) -> str:
        """Kafka's security.protocol implied by which sections are present."""
        tls = self.tls is not None and self.tls.enabled
        if self.sasl is not None:
            return "SASL_SSL" if tls else "SASL_PLAINTEXT"
        return "SSL" if tls else "PLAINTEXT"


class Kafka(_Model):
    bootstrap_servers: str = Field(
        max_length=1024, pattern=r"^[^\s,:]+:[0-9]{1,5}(,[^\s,:]+:[0-9]{1,5})*$"
    )
    topic_management: Literal["Operator", "Strimzi", "None"] = "Operator"
    strimzi_cluster: str | None = Field(None, min_length=1, max_length=63)
    deletion_policy: Literal["Retain", "Delete"] = "Retain"
    offset_reset: Literal["earliest", "latest"] = "earliest"
    topics: Topics = Topics()
    consumer_groups: ConsumerGroups = ConsumerGroups()
    auth: KafkaAuth | None = None

    @model_validator(mode="after")
    def _strimzi_needs_cluster(self) -> Kafka:
        if self.topic_management == "Strimzi" and self.strimzi_cluster is None:
            raise ValueError("strimziCluster is required when topicManagement is Strimzi")
        return self


class _Quantities(_Model):
    @field_validator("cpu", "memory", mode="before", check_fields=False)
    @classmethod
    def _as_string(cls, value: int | str | None) -> str | None:
        """The API server keeps int-or-string quantities as given; builders want strings."""
        return None if value is None else str(value)


class Requests(_Quantities):
    cpu: Quantity = Field("100m", pattern=QUANTITY_PATTERN)
    memory: Quantity = Field("128Mi", pattern=QUANTITY_PATTERN)


class Limits(_Quantities):
    cpu: Quantity = Field(None, pattern=QUANTITY_PATTERN)
    memory: Quantity = Field("256Mi", pattern=QUANTITY_PATTERN)


class Resources(_Model):
    requests: Requests = Requests()
    limits: Limits = Limits()


class EnvVar(_Model):
    name: str = Field(max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str = Field("", max_length=4096)


class KafkaLagTrigger(_Model):
    topic: Literal["messages", "tasks"] = "tasks"
    lag_threshold: int = Field(10, ge=1, le=1_000_000)
    activation_lag_threshold: int = Field(0, ge=0, le=1_000_000)
    offset_reset_policy: Literal["earliest", "latest"] | None = None
    allow_idle_consumers: bool = False
    limit_to_partitions_with_lag: bool = False

    @model_validator(mode="after")
    def _exclusive(self) -> KafkaLagTrigger:
        """KEDA refuses the combination at runtime; refusing it here says so up front."""
        if self.allow_idle_consumers and self.limit_to_partitions_with_lag:
            raise ValueError("allowIdleConsumers and limitToPartitionsWithLag are exclusive")
        return self


PrometheusPreset = Literal["queueDepth", "tasksInProgress", "requestRate", "p95Latency"]


class PrometheusTrigger(_Model):
    query: str | None = Field(None, min_length=1, max_length=4096)
    preset: PrometheusPreset | None = None
    threshold: str = Field(pattern=NUMBER_PATTERN, max_length=32)
    activation_threshold: str = Field("0", pattern=NUMBER_PATTERN, max_length=32)
    ignore_null_values: bool = False

    @model_validator(mode="after")
    def _query_or_preset(self) -> PrometheusTrigger:
        if (self.query is None) == (self.preset is None):
            raise ValueError("set exactly one of query and preset")
        return self


class ResourceTrigger(_Model):
    metric_type: Literal["Utilization", "AverageValue"] = "Utilization"
    value: str = Field(pattern=QUANTITY_PATTERN)

    @field_validator("value", mode="before")
    @classmethod
    def _as_string(cls, value: int | str) -> str:
        """Percentages arrive as integers, quantities as strings; KEDA wants strings."""
        return str(value)


class Trigger(_Model):
    name: str = Field(max_length=63, pattern=TRIGGER_NAME_PATTERN)
    kafka_lag: KafkaLagTrigger | None = None
    prometheus: PrometheusTrigger | None = None
    cpu: ResourceTrigger | None = None
    memory: ResourceTrigger | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        if sum(getattr(self, kind) is not None for kind in TRIGGER_KINDS) != 1:
            raise ValueError("set exactly one of kafkaLag, prometheus, cpu and memory")
        return self

    @property
    def kind(self) -> str:
        """Which of the trigger kinds this one is (exactly one is set)."""
        return next(kind for kind in TRIGGER_KINDS if getattr(self, kind) is not None)


class ScalingPolicy(_Model):
    type: Literal["Pods", "Percent"]
    value: int = Field(ge=1, le=1000)
    period_seconds: int = Field(ge=1, le=1800)


class ScalingRules(_Model):
    stabilization_window_seconds: int | None = Field(None, ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] | None = None
    policies: list[ScalingPolicy] = Field(default_factory=list, max_length=10)


class Behavior(_Model):
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None


class Fallback(_Model):
    failure_threshold: int = Field(3, ge=1, le=100)
    replicas: int = Field(ge=0, le=1000)


class ScalingModifiers(_Model):
    formula: str = Field(min_length=1, max_length=1024)
    target: str = Field(pattern=NUMBER_PATTERN, max_length=32)


class Autoscaling(_Model):
    enabled: bool = False
    min_replicas: int = Field(1, ge=0, le=1000)
    max_replicas: int = Field(10, ge=1, le=1000)
    # No default: the builder writes each only where KEDA uses it, unless the user set it.
    polling_interval: int | None = Field(None, ge=1, le=3600)
    cooldown_period: int | None = Field(None, ge=0, le=86400)
    behavior: Behavior | None = None
    fallback: Fallback | None = None
    triggers: list[Trigger] = Field(default_factory=list, max_length=16)
    scaling_modifiers: ScalingModifiers | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Autoscaling:
        """The CEL rules of the CRD, for specs that never pass through the API server."""
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        if self.enabled and not self.triggers:
            raise ValueError("at least one trigger is required when autoscaling is enabled")
        external = any(trigger.kind in ("kafka_lag", "prometheus") for trigger in self.triggers)
        if self.fallback and not self.scaling_modifiers and not external:
            raise ValueError("fallback needs a kafkaLag or prometheus trigger")
        if self.min_replicas == 0 and not external:
            raise ValueError("minReplicas 0 needs a kafkaLag or prometheus trigger")
        names = [trigger.name for trigger in self.triggers]
        if len(set(names)) != len(names):
            raise ValueError("trigger names must be unique")
        return self


class ResourceBounds(_Quantities):
    cpu: Quantity = Field(None, pattern=QUANTITY_PATTERN)
    memory: Quantity = Field(None, pattern=QUANTITY_PATTERN)


class VerticalScaling(_Model):
    enabled: bool = False
    update_mode: Literal["Off", "Initial", "Recreate", "InPlaceOrRecreate"] = "Initial"
    min_allowed: ResourceBounds | None = None
    max_allowed: ResourceBounds | None = None
    controlled_resources: list[Literal["cpu", "memory"]] = Field(
        default_factory=lambda: ["cpu", "memory"], max_length=2
    )
    controlled_values: Literal["RequestsAndLimits", "RequestsOnly"] = "RequestsAndLimits"


class Component(_Model):
    enabled: bool = True
    replicas: int = Field(1, ge=0, le=100)
    resources: Resources = Resources()
    env: list[EnvVar] = Field(default_factory=list, max_length=64)
    autoscaling: Autoscaling = Autoscaling()
    vertical_scaling: VerticalScaling = VerticalScaling()


class Worker(Component):
    concurrency: int = Field(4, ge=1, le=256)


class Prometheus(_Model):
    server_address: str = Field(max_length=1024, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")


class ServiceMonitor(_Model):
    enabled: bool = True
    labels: dict[str, str] = Field(default_factory=dict, max_length=16)
    interval: str = Field("15s", min_length=2, pattern=DURATION_PATTERN)


class Dashboard(_Model):
    enabled: bool = True
    labels: dict[str, str] = Field(
        default_factory=lambda: {"grafana_dashboard": "1"}, max_length=16
    )
    folder: str = Field("ScalingDemo", min_length=1, max_length=253)
    folder_annotation: str = Field("k8s-sidecar-target-directory", min_length=1, max_length=253)


class Monitoring(_Model):
    prometheus: Prometheus | None = None
    service_monitor: ServiceMonitor = ServiceMonitor()
    pod_annotations: bool = True
    dashboard: Dashboard = Dashboard()


class ScalingDemoSpec(_Model):
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


def _location(loc: tuple[int | str, ...]) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse(raw: dict) -> ScalingDemoSpec:
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
            if variable.name in MANAGED_ENV:
                found.append(
                    f"spec.{name}.env[{index}].name: {variable.name} is set by the operator from "
                    "the spec; change the corresponding spec field instead"
                )
        if component.autoscaling.enabled:
            found += _trigger_problems(spec, name, component)
    return found


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
        if trigger.prometheus is not None and spec.monitoring.prometheus is None:
            found.append(
                f"{where}.prometheus: needs spec.monitoring.prometheus.serverAddress to query"
            )
        if kind in ("cpu", "memory") and getattr(component.resources.requests, kind) is None:
            found.append(f"{where}.{kind}: needs spec.{name}.resources.requests.{kind}")
    return found
