"""The contract every scenario kind implements, and the typed result it returns.

A kind turns validated inputs (pydantic) into a *resolved* tree of frozen dataclasses whose
numeric leaves the engines read (presets looked up, units already SI). `compute` evaluates the
vectorised metrics from that tree; `evaluate` adds the math shown, the tables and the figures.
A sweep replaces numeric leaves of the resolved tree by arrays and calls `compute` once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dse.catalog import Catalog

InputsT = TypeVar("InputsT", bound=BaseModel)
ResolvedT = TypeVar("ResolvedT")


class InputError(ValueError):
    """Inputs that pass the schema but cannot be evaluated (e.g. tp does not divide heads).

    `field` is the dotted path inside `inputs`; the API answers 422 naming it.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


class StrictModel(BaseModel):
    """Base of every input model: unknown fields are errors, numbers must be finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class MetricSpec(BaseModel):
    """What a metric is: its label, unit and formula (the math shown)."""

    label: str
    unit: str
    formula: str = ""


class Metric(BaseModel):
    key: str
    label: str
    value: float | None
    unit: str
    formula: str = Field("", description="How the value is computed, with the symbols of `terms`.")
    terms: dict[str, float | str] = Field(default_factory=dict, description="The inputs the formula took.")


class Column(BaseModel):
    key: str
    label: str
    unit: str = ""


class Table(BaseModel):
    key: str
    title: str
    columns: list[Column]
    rows: list[list[float | int | str | bool | None]]


class Figure(BaseModel):
    key: str
    title: str
    figure: dict[str, Any] = Field(description="A Plotly figure (data + layout) as JSON.")


class EvaluationResult(BaseModel):
    kind: str
    engine_version: str
    feasible: bool = True
    metrics: list[Metric]
    tables: list[Table] = Field(default_factory=list)
    figures: list[Figure] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    #: Published figures this scenario can be compared with, each with its source.
    references: list[dict[str, Any]] = Field(default_factory=list)


class ScenarioKind(ABC, Generic[InputsT, ResolvedT]):
    """One kind of scenario (inference, training, ...). Subclasses set the class variables."""

    kind: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    engine_version: ClassVar[str]
    inputs_model: ClassVar[type[BaseModel]]
    #: Every key `compute` returns, with its label, unit and formula.
    metric_specs: ClassVar[dict[str, MetricSpec]]

    @abstractmethod
    def resolve(self, inputs: InputsT, catalog: Catalog) -> ResolvedT:
        """Looks up presets, converts to SI, checks cross-field rules (raise InputError)."""

    @abstractmethod
    def compute(self, resolved: ResolvedT) -> dict[str, Any]:
        """Vectorised metrics keyed as in `metric_specs`; values broadcast with the inputs."""

    @abstractmethod
    def evaluate(self, resolved: ResolvedT) -> EvaluationResult:
        """One design point in full: metrics with the math, tables, figures, notes."""

    @abstractmethod
    def examples(self) -> list[dict[str, Any]]:
        """Realistic example documents ({schema_version, kind, name, inputs}); the first is the default."""

    def metric(self, key: str, value: Any, **terms: float | str) -> Metric:
        """A Metric for `key` from `metric_specs`, with the terms its formula used."""
        spec = self.metric_specs[key]
        number = float(np.asarray(value, dtype=float))
        return Metric(
            key=key,
            label=spec.label,
            value=number if np.isfinite(number) else None,
            unit=spec.unit,
            formula=spec.formula,
            terms={k: (float(v) if not isinstance(v, str) else v) for k, v in terms.items()},
        )
