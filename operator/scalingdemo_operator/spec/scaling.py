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


class KafkaLagTrigger(SpecModel):
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
    select_policy: Literal["Max", "Min", "Disabled"] | None = None
    policies: list[ScalingPolicy] = Field(default_factory=list, max_length=10)


class Behavior(SpecModel):
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None


class Fallback(SpecModel):
    failure_threshold: int = Field(3, ge=1, le=100)
    replicas: int = Field(ge=0, le=1000)


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
