"""The contract every scenario kind implements, and the typed result it returns.

A kind turns validated inputs (pydantic) into a *resolved* tree of frozen dataclasses whose
numeric leaves the engines read (presets looked up, units already SI). `compute` evaluates the
vectorised metrics from that tree; `evaluate` adds the math shown, the tables and the figures.
A sweep replaces numeric leaves of the resolved tree by arrays and calls `compute` once.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict

from dse.catalog import Catalog
from dse.scenarios.vocabulary import (
    RESULT_FORMAT,
    Chart,
    Column,
    DeferredStudy,
    EvaluationResult,
    Metric,
    MetricBand,
    MetricSpec,
    PublishedComparison,
    PublishedFigure,
    ScenarioLink,
    Table,
    Tolerance,
)

__all__ = [
    "MAX_COUNT",
    "RESULT_FORMAT",
    "Chart",
    "Column",
    "DeferredStudy",
    "EvaluationResult",
    "InputError",
    "Metric",
    "MetricBand",
    "MetricSpec",
    "PublishedComparison",
    "PublishedFigure",
    "ScenarioKind",
    "ScenarioLink",
    "Stopped",
    "StrictModel",
    "Study",
    "Table",
    "Tolerance",
    "Work",
    "applies_when",
    "at_least",
    "check_stop",
    "condition_holds",
    "current_should_stop",
    "grid_points",
    "stop_when",
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

    def __reduce__(self) -> tuple[type[InputError], tuple[str, str]]:  # crosses to and from worker processes
        return type(self), (self.field, self.reason)


class Stopped(Exception):
    """The work was stopped before it finished: its deadline passed or its client went away."""


#: The stop check of the evaluation running in this thread (set by the service layer around a
#: kind's `evaluate`/`compute`; none outside it). Long loops call `check_stop()` between chunks.
_SHOULD_STOP: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar("should_stop", default=None)


@contextlib.contextmanager
def stop_when(should_stop: Callable[[], bool] | None) -> Iterator[None]:
    """Within the block, `current_should_stop()` is `should_stop` (the deadline of one evaluation)."""
    token = _SHOULD_STOP.set(should_stop)
    try:
        yield
    finally:
        _SHOULD_STOP.reset(token)


def current_should_stop() -> Callable[[], bool] | None:
    """The stop check of the evaluation running in this thread, to hand to an engine's chunk loop."""
    return _SHOULD_STOP.get()


def check_stop() -> None:
    """Raises `Stopped` when this thread's evaluation must stop (a no-op outside an evaluation)."""
    should_stop = _SHOULD_STOP.get()
    if should_stop is not None and should_stop():
        raise Stopped()


@dataclasses.dataclass(frozen=True)
class Study:
    """What one study adds to an answer (see `ScenarioKind.deferred_studies`)."""

    tables: list[Table] = dataclasses.field(default_factory=list)
    charts: list[Chart] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Work:
    """What one evaluation (or a sweep) will cost, estimated from the resolved inputs before any engine runs.

    `cells`: how much, in `unit`: "cells" (engine array elements computed, ~10-100 ns each,
    vectorised) or "plans" (training plans judged by a plan search, ~0.3-1 us each); `peak_bytes`:
    the largest working set held at once; `driver`: the input that drives the cost (named in a
    refusal); `heavy`: whether the work belongs in the heavy pool (plan searches, large grids).
    """

    cells: float
    peak_bytes: float
    driver: str
    heavy: bool = False
    unit: str = "cells"


def grid_points(resolved: Any) -> int:
    """Design points a resolved tree spans: the broadcast size of its numeric leaves (1 without arrays)."""
    shapes: list[tuple[int, ...]] = []

    def walk(node: Any) -> None:
        if not dataclasses.is_dataclass(node):
            return
        for name, table in _fields_of(type(node)):  # type: ignore[arg-type]
            value = getattr(node, name)
            if isinstance(value, np.ndarray) and not table:  # a swept leaf, not a table
                shapes.append(value.shape)
            elif _is_dataclass_type(type(value)):  # type: ignore[arg-type]  # a nested dataclass instance
                walk(value)

    walk(resolved)
    return int(np.prod(np.broadcast_shapes(*shapes))) if shapes else 1


_is_dataclass_type = functools.cache(dataclasses.is_dataclass)


@functools.cache
def _fields_of(cls: type) -> tuple[tuple[str, bool], ...]:
    """A dataclass's fields, each with whether it is declared an array (a table, not a swept leaf): read once
    per class, not on every evaluation."""
    return tuple((f.name, "ndarray" in str(f.type)) for f in dataclasses.fields(cls))


#: Largest whole-number count anywhere (a signed 32-bit integer): GPUs, steps, samples, cores, channels, ...
MAX_COUNT = 2**31 - 1
#: Array elements one design point costs when a kind says nothing more (its metrics and their terms).
DEFAULT_CELLS_PER_POINT = 4096.0


def at_least(minimum: float) -> dict[str, float]:
    """An `applies_when` condition met by a number of at least `minimum` (a degree of 2 or more, say)."""
    return {"minimum": minimum}


def applies_when(reason: str, **conditions: list[Any] | dict[str, float]) -> dict[str, Any]:
    """A field's `json_schema_extra`: the input applies only while each named field holds one of its values
    (a list) or a number of at least a minimum (`at_least`).

    The form reads `x-applies-when` from the schema and disables the input, with `reason` shown,
    while a condition fails (`None` in a list stands for null). One declaration per field; the
    engine itself ignores an input that does not apply.
    """
    return {"x-applies-when": {"when": conditions, "reason": reason}}


def condition_holds(condition: list[Any] | dict[str, float], value: Any) -> bool:
    """Whether `value` meets one `applies_when` condition, as the form (static/js/form.js) reads it."""
    if isinstance(condition, dict):
        return isinstance(value, int | float) and not isinstance(value, bool) and value >= condition["minimum"]
    return value in condition


def _number_not_bool_or_text(value: Any) -> Any:
    """A number field takes a JSON number only: `true` or `"8"` is refused, not coerced to 1 or 8.

    Pydantic's lax mode would coerce both, so the API would accept what its OpenAPI schema says
    it refuses. A whole-valued float such as 8.0 stays accepted for an integer field (sweep axis
    values are floats and are set on integer paths); 8.5 is still refused by pydantic.
    """
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a JSON number")
    return value


def _is_number_annotation(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(a in (int, float) for a in args)
    return False


class StrictModel(BaseModel):
    """Base of every input model: unknown fields are errors, numbers must be finite JSON numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        changed = False
        for field in cls.__pydantic_fields__.values():
            if _is_number_annotation(field.annotation) and not any(
                isinstance(m, BeforeValidator) and m.func is _number_not_bool_or_text for m in field.metadata
            ):
                field.metadata.append(BeforeValidator(_number_not_bool_or_text))
                changed = True
        if changed:
            cls.model_rebuild(force=True)


class ScenarioKind(ABC, Generic[InputsT, ResolvedT]):
    """One kind of scenario (inference, training, ...). Subclasses set the class variables."""

    kind: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    engine_version: ClassVar[str]
    #: One evaluation is a search or a simulation (seconds): it runs in the heavy pool with the heavy deadline.
    heavy: ClassVar[bool] = False
    inputs_model: ClassVar[type[BaseModel]]
    #: Every key `compute` returns, with its label, unit and formula.
    metric_specs: ClassVar[dict[str, MetricSpec]]
    #: What one design point of a grid costs (the default `work`): array cells and working bytes,
    #: measured per kind on a 250,000-point sweep (training: ~14 us and ~1.8 kB per point).
    cells_per_point: ClassVar[float] = DEFAULT_CELLS_PER_POINT
    bytes_per_point: ClassVar[float] = 2048.0

    @abstractmethod
    def resolve(self, inputs: InputsT, catalog: Catalog) -> ResolvedT:
        """Looks up presets, converts to SI, checks cross-field rules (raise InputError)."""

    @abstractmethod
    def compute(self, resolved: ResolvedT) -> dict[str, Any]:
        """Vectorised metrics keyed as in `metric_specs`; values broadcast with the inputs."""

    @abstractmethod
    def evaluate(self, resolved: ResolvedT) -> EvaluationResult:
        """One design point in full: metrics with the math, tables, figures, notes."""

    #: Studies a quick answer leaves out (key -> title): the costly, secondary parts of `evaluate`
    #: (a replayed timeline, a comparison over a grid). The dashboard's edits ask for the quick
    #: answer and fetch a study when the user opens it; saved results, reports and the CLI are whole.
    deferred_studies: ClassVar[dict[str, str]] = {}

    def evaluate_quick(self, resolved: ResolvedT) -> EvaluationResult:
        """`evaluate` without the deferred studies (a kind with some overrides this and `study`)."""
        return self.evaluate(resolved)

    def study(self, resolved: ResolvedT, key: str) -> Study:
        """One of `deferred_studies`, computed."""
        raise KeyError(key)

    def studies_for(self, resolved: ResolvedT) -> Sequence[str]:
        """The keys of `deferred_studies` that apply to `resolved` (default: all); a quick answer lists
        only these as deferred, and an `include` naming another adds nothing."""
        return list(self.deferred_studies)

    def evaluate_including(self, resolved: ResolvedT, include: Sequence[str]) -> EvaluationResult:
        """The quick answer with the deferred studies named in `include` added (in declaration order);
        the others are listed in `deferred`."""
        result = self.evaluate_quick(resolved)
        if not self.deferred_studies:
            return result
        tables, charts, notes = list(result.tables), list(result.charts), list(result.notes)
        deferred = []
        applicable = set(self.studies_for(resolved))
        for key, title in self.deferred_studies.items():
            if key not in applicable:
                continue
            if key not in include:
                deferred.append(DeferredStudy(key=key, title=title))
                continue
            check_stop()
            study = self.study(resolved, key)
            tables += study.tables
            charts += study.charts
            notes += study.notes
        return result.model_copy(update={"tables": tables, "charts": charts, "notes": notes, "deferred": deferred})

    def is_medium(self, inputs: InputsT) -> bool:
        """Whether one evaluation of these inputs takes tens of milliseconds (many engine calls, a routing
        loop) where a cheap one takes a few: such work runs in the API's small medium pool
        (dse.api.cpu), so a burst of it never takes every cheap thread. Judged from the inputs alone
        (nothing resolved); the default: no."""
        return False

    @abstractmethod
    def examples(self) -> list[dict[str, Any]]:
        """Realistic example documents ({schema_version, kind, name, inputs}); the first is the default."""

    def work(self, resolved: ResolvedT) -> Work:
        """The cost of evaluating `resolved` (numeric leaves may be sweep arrays), before any engine runs.

        The default: a closed-form kind whose cost grows with the design points only. Kinds with
        loops or arrays sized by an input (plan searches, per-channel PIM placement, degree fits)
        override it and name that input as the driver.
        """
        points = grid_points(resolved)
        return Work(cells=points * self.cells_per_point, peak_bytes=points * self.bytes_per_point, driver="axes")

    #: The dtype this kind's published figures are priced in, where a record does not say ("" = any).
    validation_dtype: ClassVar[str] = ""
    #: The kind whose published figures validate this kind's engine, when it holds none of its own (a plan
    #: search is priced by the training engine); None: this kind.
    validated_by: ClassVar[str | None] = None
    #: For a search: (table key, column key) of its ranked answers, best first, lower is better; the
    #: result then says how likely the first beats the second (dse.services.bands).
    ranking: ClassVar[tuple[str, str] | None] = None

    def published_figures(self) -> Sequence[PublishedFigure]:
        """The published figures this kind is validated against (its `published.py`); none by default."""
        return ()

    def validation_group(self, resolved: ResolvedT) -> tuple[Any, str]:
        """(accelerator spec or None, dtype) of one scenario, to match it with the validated groups.

        The default reads `accelerator` (or `cluster.accelerator`) and `dtype` (or `activation_dtype`) of
        the resolved tree; a kind that keeps them elsewhere overrides it.
        """
        accelerator = getattr(resolved, "accelerator", None)
        if accelerator is None:
            accelerator = getattr(getattr(resolved, "cluster", None), "accelerator", None)
        dtype = getattr(resolved, "dtype", None) or getattr(resolved, "activation_dtype", None)
        return accelerator, str(dtype) if isinstance(dtype, str) else self.validation_dtype

    def validation_scale(self, resolved: ResolvedT) -> float | None:
        """Accelerators one scenario uses, to compare with the scale of the validated runs: the default
        reads `cluster.gpus`; None where the kind has no such number."""
        gpus = getattr(getattr(resolved, "cluster", None), "gpus", None)
        return float(gpus) if isinstance(gpus, int | float) and not isinstance(gpus, bool) else None

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
            codes=spec.codes,
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
