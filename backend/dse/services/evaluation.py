"""Evaluate a document, evaluate a saved scenario through the result cache, sweep, compare.

A saved scenario's result is cached under `result_cache_key(kind)`: the kind's engine version AND the
shape of the result (`RESULT_FORMAT`). A result cached by an older engine, or in an older shape
(e.g. before metrics carried `value_type` or results carried `published`), is never read back; it is
recomputed and cached under the new key.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from dse.catalog import Catalog
from dse.scenarios.base import RESULT_FORMAT, EvaluationResult, ScenarioKind
from dse.scenarios.compare import Comparison, compare
from dse.scenarios.documents import document_json, evaluate_document, kind_of, parse_document
from dse.scenarios.sweep import SweepAxis, SweepResult, run_sweep, sweepable_paths
from dse.store import ScenarioRecord, Store, StoreError

__all__ = [
    "SavedResult",
    "cached_evaluation",
    "compare_items",
    "evaluate",
    "result_cache_key",
    "saved_result",
    "sweep",
    "sweep_axes",
]


def evaluate(document: BaseModel, catalog: Catalog) -> EvaluationResult:
    """One document evaluated (nothing is saved)."""
    return evaluate_document(document, catalog)


def result_cache_key(kind: ScenarioKind[Any, Any]) -> str:
    """The key a saved scenario's result is cached under: engine version and result format together."""
    return f"{kind.engine_version}+result-format-{RESULT_FORMAT}"


def cached_evaluation(store: Store, scenario_id: str, document: BaseModel, catalog: Catalog) -> EvaluationResult:
    """The result of a saved scenario, from the cache when this engine version computed it in this format."""
    key = result_cache_key(kind_of(document))
    cached = store.cached_result(scenario_id, key)
    if cached is not None:
        with contextlib.suppress(ValidationError):  # a cached result that no longer parses is recomputed
            return EvaluationResult.model_validate(cached)
    result = evaluate_document(document, catalog)
    with contextlib.suppress(StoreError):  # a result the cache cannot keep is still the answer
        store.cache_result(scenario_id, key, result.model_dump(mode="json"))
    return result


@dataclass(frozen=True)
class SavedResult:
    """A saved scenario, its validated document (canonical JSON) and its result."""

    record: ScenarioRecord
    document: dict[str, Any]
    result: EvaluationResult


def saved_result(store: Store, scenario_id: str, catalog: Catalog) -> SavedResult:
    """The saved scenario `scenario_id` with its (cached) result; the store raises for an unknown id."""
    record = store.get(scenario_id)
    document = parse_document(record.document)
    return SavedResult(record, document_json(document), cached_evaluation(store, record.id, document, catalog))


def sweep(document: BaseModel, catalog: Catalog, axes: list[SweepAxis]) -> SweepResult:
    """One or two numeric inputs swept over values: one engine call for the grid."""
    return run_sweep(kind_of(document), document.inputs, catalog, axes)  # type: ignore[attr-defined]


def sweep_axes(document: BaseModel, catalog: Catalog) -> dict[str, float]:
    """Every input path a sweep may take for this document, with its current value (SI units)."""
    kind = kind_of(document)
    paths: dict[str, float] = sweepable_paths(kind.resolve(document.inputs, catalog))  # type: ignore[attr-defined]
    return paths


def compare_items(items: list[str | BaseModel], store: Store, catalog: Catalog) -> Comparison:
    """Saved scenario ids (cached results) or inline documents compared against the first."""
    documents, results = [], []
    for item in items:
        if isinstance(item, str):
            saved = saved_result(store, item, catalog)
            documents.append(saved.document)
            results.append(saved.result)
        else:
            documents.append(document_json(item))
            results.append(evaluate_document(item, catalog))
    return compare(documents, results)
