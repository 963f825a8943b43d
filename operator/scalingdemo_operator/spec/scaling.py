"""The autoscaling sections of a component: KEDA triggers and bounds, and the VPA."""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import Field, field_validator, model_validator

from ..quantities import amount
from .base import (
    NUMBER_PATTERN,
    QUANTITY_PATTERN,
    TRIGGER_NAME_PATTERN,
    QuantitiesModel,
    Quantity,
    ResourceName,
    SpecModel,
)

TRIGGER_KINDS = ("kafka_lag", "prometheus", "cpu", "memory")
PARTITION_LIST_PATTERN = r"^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$"
"""KEDA's partitionLimitation syntax without its optional spaces: IDs and ranges, e.g. 0,2,4-7."""


class KafkaLagTrigger(SpecModel):
    topic: Literal["messages", "tasks"] = "tasks"
    lag_threshold: int = Field(10, ge=1, le=1_000_000)
    activation_lag_threshold: int = Field(0, ge=0, le=1_000_000)
    offset_reset_policy: Literal["earliest", "latest"] | None = None
    allow_idle_consumers: bool = False
    limit_to_partitions_with_lag: bool = False
    ensure_even_distribution_of_partitions: bool = False
    exclude_persistent_lag: bool = False
    scale_to_zero_on_invalid_offset: bool = False
    partition_limitation: str | None = Field(None, max_length=1024, pattern=PARTITION_LIST_PATTERN)

    @model_validator(mode="after")
    def _exclusive(self) -> KafkaLagTrigger:
        """Combinations KEDA's kafka scaler refuses at runtime (the ScaledObject goes not Ready
        long after the apply): refusing them here says so up front, naming the fields."""
        limited = self.limit_to_partitions_with_lag
        if self.allow_idle_consumers and limited:
            raise ValueError("allowIdleConsumers and limitToPartitionsWithLag are exclusive")
        if self.ensure_even_distribution_of_partitions and limited:
            raise ValueError(
                "ensureEvenDistributionOfPartitions and limitToPartitionsWithLag are exclusive"
            )
        for start, end in self.partition_ranges():
            if start > end:
                raise ValueError(
                    f"partitionLimitation: the range {start}-{end} is empty (start after end)"
                )
        return self

    def partition_ranges(self) -> list[tuple[int, int]]:
        """partitionLimitation as inclusive (first, last) ranges; a single ID is a range of one."""
        if self.partition_limitation is None:
            return []
        ranges = []
        for part in self.partition_limitation.split(","):
            first, _, last = part.partition("-")
            ranges.append((int(first), int(last or first)))
        return ranges

    @property
    def caps_at_partitions(self) -> bool:
        """Whether KEDA stops asking for replicas at the topic's partition count: always,
        unless allowIdleConsumers is set, and even then with ensureEvenDistributionOfPartitions."""
        return not self.allow_idle_consumers or self.ensure_even_distribution_of_partitions


PrometheusPreset = Literal["queueDepth", "tasksInProgress", "requestRate", "p95Latency"]
"""Every preset queries series the scaled pods report themselves: at zero pods they vanish."""


class PrometheusTrigger(SpecModel):
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


class ResourceTrigger(SpecModel):
    metric_type: Literal["Utilization", "AverageValue"] = "Utilization"
    value: str = Field(pattern=QUANTITY_PATTERN)

    @field_validator("value", mode="before")
    @classmethod
    def _as_string(cls, value: int | str) -> str:
        """Percentages arrive as integers, quantities as strings; KEDA wants strings."""
        return str(value)


class Trigger(SpecModel):
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

    @property
    def sees_demand_at_zero(self) -> bool:
        """Kafka measures lag without any consumer running; cpu, memory and the presets read
        what the scaled pods report, which is gone at zero replicas. A raw query may read
        anything: only its author can tell (a Warning says so, see assess)."""
        return self.kafka_lag is not None or (
            self.prometheus is not None and self.prometheus.query is not None
        )


class ScalingPolicy(SpecModel):
    type: Literal["Pods", "Percent"]
    value: int = Field(ge=1, le=1000)
    period_seconds: int = Field(ge=1, le=1800)


class ScalingRules(SpecModel):
    stabilization_window_seconds: int | None = Field(None, ge=0, le=3600)
    tolerance: str | None = Field(None, pattern=NUMBER_PATTERN, max_length=32)
    select_policy: Literal["Max", "Min", "Disabled"] | None = None
    policies: list[ScalingPolicy] = Field(default_factory=list, max_length=10)


class Behavior(SpecModel):
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None


FallbackBehavior = Literal[
    "static",
    "currentReplicas",
    "currentReplicasIfHigher",
    "currentReplicasIfLower",
    "scalingModifiers",
]


class Fallback(SpecModel):
    failure_threshold: int = Field(3, ge=1, le=100)
    replicas: int = Field(ge=0, le=1000)
    # No default: KEDA's own is static, and a ScaledObject without the field keeps it.
    behavior: FallbackBehavior | None = None


FORMULA_WORDS = frozenset(
    {
        "and",
        "or",
        "not",
        "in",
        "matches",
        "contains",
        "startsWith",
        "endsWith",
        "true",
        "false",
        "nil",
        "let",
        "if",
        "else",
    }
)
"""Words of KEDA's formula language (expr) that are not variables."""
FORMULA_STRINGS = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|`[^`]*`")
FORMULA_NAME = re.compile(r"(?<![\w.#$])[A-Za-z_][A-Za-z0-9_]*\b(?!\s*\()")


class ScalingModifiers(SpecModel):
    formula: str = Field(min_length=1, max_length=1024)
    target: str = Field(pattern=NUMBER_PATTERN, max_length=32)

    def names(self) -> set[str]:
        """The variables the formula reads: KEDA binds each trigger's value to its name and
        refuses (in its webhook) or fails on any other. Function calls, member access
        (a.b), string literals and the language's words are not variables."""
        code = FORMULA_STRINGS.sub(" ", self.formula)
        return {name for name in FORMULA_NAME.findall(code) if name not in FORMULA_WORDS}


class Autoscaling(SpecModel):
    enabled: bool = False
    min_replicas: int = Field(1, ge=0, le=1000)
    max_replicas: int = Field(10, ge=1, le=1000)
    # No default: the builder writes each only where KEDA uses it, unless the user set it.
    polling_interval: int | None = Field(None, ge=1, le=3600)
    cooldown_period: int | None = Field(None, ge=0, le=86400)
    initial_cooldown_period: int | None = Field(None, ge=0, le=86400)
    idle_replica_count: int | None = Field(None, ge=0, le=0)
    paused_replicas: int | None = Field(None, ge=0, le=1000)
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
        if self.min_replicas == 0 and not self.wakes_from_zero:
            raise ValueError(
                "minReplicas 0 needs a kafkaLag trigger or a prometheus query: cpu, memory and "
                "the prometheus presets read what the scaled pods report, which is gone at zero"
            )
        names = [trigger.name for trigger in self.triggers]
        if len(set(names)) != len(names):
            raise ValueError("trigger names must be unique")
        unknown = (
            sorted(self.scaling_modifiers.names() - set(names)) if self.scaling_modifiers else []
        )
        if unknown:
            raise ValueError(
                f"scalingModifiers.formula names {', '.join(unknown)}, which no trigger is "
                f"called (triggers: {', '.join(names)})"
            )
        return self

    @property
    def wakes_from_zero(self) -> bool:
        """Some trigger can see demand while no pod of the component runs."""
        return any(trigger.sees_demand_at_zero for trigger in self.triggers)

    @model_validator(mode="after")
    def _keda_settings(self) -> Autoscaling:
        """What KEDA's admission webhook or its scale loop would refuse, named by our field.

        KEDA wants idleReplicaCount below minReplicaCount (its webhook counts a minReplicaCount
        of 0 as 1, so it lets 0 and 0 through, which means nothing); idle mode wakes only on a
        trigger that sees demand without the pods, like scaling from zero; the scalingModifiers
        fallback is refused by KEDA's webhook without a formula.
        """
        if self.idle_replica_count is not None:
            if self.idle_replica_count >= self.min_replicas:
                raise ValueError(
                    f"idleReplicaCount ({self.idle_replica_count}) must be less than "
                    f"minReplicas ({self.min_replicas})"
                )
            if not self.wakes_from_zero:
                raise ValueError(
                    "idleReplicaCount needs a kafkaLag trigger or a prometheus query: cpu, memory "
                    "and the prometheus presets cannot wake an idle component"
                )
        fallback = self.fallback
        if fallback and fallback.behavior == "scalingModifiers" and not self.scaling_modifiers:
            raise ValueError("fallback.behavior scalingModifiers needs scalingModifiers.formula")
        return self

    @property
    def sets_tolerance(self) -> bool:
        """Whether a scaling direction sets the HPA's tolerance, a field not every API serves."""
        rules = [self.behavior.scale_up, self.behavior.scale_down] if self.behavior else []
        return any(rule is not None and rule.tolerance is not None for rule in rules)

    @property
    def idles(self) -> bool:
        """Whether KEDA takes the component below the HPA's range when every trigger is
        inactive (to zero, or to idleReplicaCount): then pollingInterval and the cooldowns
        pace it, not the HPA."""
        return self.min_replicas == 0 or self.idle_replica_count is not None


class ResourceBounds(QuantitiesModel):
    cpu: Quantity = Field(None, pattern=QUANTITY_PATTERN)
    memory: Quantity = Field(None, pattern=QUANTITY_PATTERN)


class VerticalScaling(SpecModel):
    enabled: bool = False
    update_mode: Literal["Off", "Initial", "Recreate", "InPlaceOrRecreate"] = "Initial"
    min_allowed: ResourceBounds | None = None
    max_allowed: ResourceBounds | None = None
    controlled_resources: list[ResourceName] = Field(
        default_factory=lambda: list(get_args(ResourceName)), max_length=2
    )
    controlled_values: Literal["RequestsAndLimits", "RequestsOnly"] = "RequestsAndLimits"

    @model_validator(mode="after")
    def _bounds_ordered(self) -> VerticalScaling:
        """The VPA takes crossed bounds without complaint and then cannot honour both."""
        if self.min_allowed is None or self.max_allowed is None:
            return self
        for resource in get_args(ResourceName):
            low, high = getattr(self.min_allowed, resource), getattr(self.max_allowed, resource)
            if low is not None and high is not None and amount(low) > amount(high):
                raise ValueError(
                    f"minAllowed.{resource} ({low}) must not exceed maxAllowed.{resource} ({high})"
                )
        return self
