"""The contract every scenario kind implements, and the typed result it returns.

A kind turns validated inputs (pydantic) into a *resolved* tree of frozen dataclasses whose
numeric leaves the engines read (presets looked up, units already SI). `compute` evaluates the
vectorised metrics from that tree; `evaluate` adds the math shown, the tables and the figures.
A sweep replaces numeric leaves of the resolved tree by arrays and calls `compute` once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from dse.catalog import Catalog
from dse.scenarios.vocabulary import (
    RESULT_FORMAT,
    Chart,
    Column,
    EvaluationResult,
    Metric,
    MetricSpec,
    PublishedComparison,
    PublishedFigure,
    ScenarioLink,
    Table,
    Tolerance,
)

__all__ = [
    "RESULT_FORMAT",
    "Chart",
    "Column",
    "EvaluationResult",
    "InputError",
    "Metric",
    "MetricSpec",
    "PublishedComparison",
    "PublishedFigure",
    "ScenarioKind",
    "ScenarioLink",
    "StrictModel",
    "Table",
    "Tolerance",
    "applies_when",
]

InputsT = TypeVar("InputsT", bound=BaseModel)
ResolvedT = TypeVar("ResolvedT")


class InputError(ValueError):
    """Inputs that pass the schema but cannot be evaluated (e.g. tp does not divide heads).

    `field` is the dotted path inside `inputs`; the API answers 422 naming it.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


def applies_when(reason: str, **conditions: list[Any]) -> dict[str, Any]:
    """A field's `json_schema_extra`: the input applies only while each named field holds one of its values.

    The form reads `x-applies-when` from the schema and disables the input, with `reason` shown,
    while a condition fails (`None` in a list stands for null). One declaration per field; the
    engine itself ignores an input that does not apply.
    """
    return {"x-applies-when": {"when": conditions, "reason": reason}}


class StrictModel(BaseModel):
    """Base of every input model: unknown fields are errors, numbers must be finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


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

    def published_figures(self) -> Sequence[PublishedFigure]:
        """The published figures this kind is validated against (its `published.py`); none by default."""
        return ()

    def metric(self, key: str, value: Any, **terms: float | str) -> Metric:
        """A Metric for `key` from `metric_specs`, with the terms its formula used."""
        spec = self.metric_specs[key]
        number = float(np.asarray(value, dtype=float))
        shown: float | bool | None
        if spec.boolean:
            shown = bool(number > 0) if np.isfinite(number) else None
        else:
            shown = number if np.isfinite(number) else None
        return Metric(
            key=key,
            label=spec.label,
            value=shown,
            value_type="boolean" if spec.boolean else "number",
            unit=spec.unit,
            display=spec.display,
            formula=spec.formula,
            terms={k: (float(v) if not isinstance(v, str) else v) for k, v in terms.items()},
        )

    def metrics(
        self,
        values: Mapping[str, Any],
        terms: Mapping[str, float | str] | None = None,
        per_metric_terms: Mapping[str, Mapping[str, float | str]] | None = None,
    ) -> list[Metric]:
        """Every declared metric, in declaration order; a declared metric missing from `values` is an error.

        `terms` are shown with every metric's formula, `per_metric_terms[key]` only with that one.
        """
        missing = [key for key in self.metric_specs if key not in values]
        if missing:
            raise KeyError(f"{self.kind}: declared metrics not computed: {', '.join(missing)}")
        shared = dict(terms or {})
        own = per_metric_terms or {}
        return [self.metric(key, values[key], **shared, **own.get(key, {})) for key in self.metric_specs]
