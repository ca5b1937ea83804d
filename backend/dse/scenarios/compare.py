"""Compare 2 to 8 evaluated scenarios: the inputs that differ and the aligned metric deltas."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from dse.scenarios.base import EvaluationResult


class InputDifference(BaseModel):
    path: str
    values: list[Any]


class MetricComparison(BaseModel):
    key: str
    label: str
    unit: str
    value_type: Literal["number", "boolean"] = Field("number", description="As the metric's: 'boolean' is yes/no.")
    values: list[float | bool | None]
    #: value - first value (the first scenario is the baseline); None throughout for a yes/no metric.
    absolute_delta: list[float | None]
    #: (value - first value) / |first value|; None throughout for a yes/no metric.
    relative_delta: list[float | None]


class Comparison(BaseModel):
    names: list[str]
    kinds: list[str]
    inputs_differ: list[InputDifference]
    metrics: list[MetricComparison]


_MISSING = "(absent)"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to {dotted.path: leaf}; lists stay leaves."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def compare(documents: list[dict[str, Any]], results: list[EvaluationResult]) -> Comparison:
    flat = [flatten({"kind": d["kind"], "inputs": d["inputs"]}) for d in documents]
    paths = sorted(set().union(*flat))
    differ = []
    for path in paths:
        values = [f.get(path, _MISSING) for f in flat]
        if any(v != values[0] for v in values[1:]):
            differ.append(InputDifference(path=path, values=values))
    by_key = [{m.key: m for m in r.metrics} for r in results]
    common = [m for m in results[0].metrics if all(m.key in other for other in by_key[1:])]
    metrics = []
    for first in common:
        values = [other[first.key].value for other in by_key]
        base = values[0]
        absolute: list[float | None] = [None] * len(values)
        relative: list[float | None] = [None] * len(values)
        if first.value_type == "number":  # a yes/no metric has no delta: the values say what changed
            absolute = [None if v is None or base is None else float(v) - float(base) for v in values]
            relative = [None if a is None or base is None or base == 0 else a / abs(float(base)) for a in absolute]
        metrics.append(
            MetricComparison(
                key=first.key,
                label=first.label,
                unit=first.unit,
                value_type=first.value_type,
                values=values,
                absolute_delta=absolute,
                relative_delta=relative,
            )
        )
    return Comparison(
        names=[d["name"] for d in documents],
        kinds=[d["kind"] for d in documents],
        inputs_differ=differ,
        metrics=metrics,
    )
