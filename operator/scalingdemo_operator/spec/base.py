"""What every part of the spec model shares: the base model, the error, the value syntaxes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

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
ResourceName = Literal["cpu", "memory"]


class SpecError(ValueError):
    """The spec cannot be used; each entry of `problems` names the offending field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class SpecModel(BaseModel):
    """camelCase aliases like the CRD, immutable, unknown fields refused (they mean drift)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class QuantitiesModel(SpecModel):
    @field_validator("cpu", "memory", mode="before", check_fields=False)
    @classmethod
    def _as_string(cls, value: int | str | None) -> str | None:
        """The API server keeps int-or-string quantities as given; builders want strings."""
        return None if value is None else str(value)
