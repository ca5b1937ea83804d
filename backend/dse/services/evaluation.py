"""Evaluate a document, evaluate a saved scenario through the result cache, sweep, compare.

A saved scenario's result is cached under `result_cache_key(kind)`: the kind's engine version AND the
shape of the result (`RESULT_FORMAT`). A result cached by an older engine, or in an older shape
(e.g. before metrics carried `value_type` or results carried `published`), is never read back; it is
recomputed and cached under the new key.

Every evaluation carries the error bands of its time- and throughput-like metrics (dse.services.bands).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from dse.catalog import Catalog
from dse.scenarios.base import RESULT_FORMAT, EvaluationResult, InputError, ScenarioKind, Stopped, stop_when
from dse.scenarios.compare import Comparison, compare
from dse.scenarios.documents import document_json, kind_of, parse_document
from dse.scenarios.sweep import SweepAxis, SweepResult, run_sweep, sweepable_paths
from dse.services.bands import attach_bands, sweep_bands
from dse.services.limits import Deadline, DeadlinePassed, check_work, get_limits
from dse.store import ScenarioRecord, Store, StoreError

logger = logging.getLogger("dse.services")

__all__ = [
    "SavedResult",
    "cached_evaluation",
    "check_evaluable",
    "compare_items",
    "evaluate",
    "is_heavy",
    "result_cache_key",
    "saved_result",
    "sweep",
    "sweep_axes",
]


@contextlib.contextmanager
def _bounded(deadline: Deadline | None) -> Iterator[None]:
    """The block runs under `deadline` (its loops check it); a stop, an overflow or an allocation
    the machine cannot make becomes a clear answer (503 or 422), never a 500."""
    try:
        with stop_when(deadline):
            if deadline is not None and deadline():
                raise Stopped()  # it waited in the queue past its deadline: do not start
            yield
    except Stopped:
        raise (deadline.passed() if deadline is not None else DeadlinePassed(0.0)) from None
    except MemoryError:
        raise InputError("(inputs)", "this request needs more memory than one request may use") from None
    except ArithmeticError as exc:  # overflow or division by zero on an extreme (but valid) input
        logger.warning("arithmetic error on a valid document", exc_info=True)
        raise InputError("(inputs)", f"these inputs cannot be evaluated: {exc}") from None


def _checked(document: BaseModel, catalog: Catalog) -> tuple[ScenarioKind[Any, Any], Any]:
    """The document's kind and resolved inputs, its cost checked against the request budget."""
    kind = kind_of(document)
    resolved = kind.resolve(document.inputs, catalog)  # type: ignore[attr-defined]
    check_work(kind.work(resolved))
    return kind, resolved


def _evaluated(kind: ScenarioKind[Any, Any], resolved: Any, catalog: Catalog) -> EvaluationResult:
    """One resolved scenario evaluated, with the error bands of its metrics."""
    return attach_bands(kind, resolved, kind.evaluate(resolved), catalog)


def evaluate(document: BaseModel, catalog: Catalog, deadline: Deadline | None = None) -> EvaluationResult:
    """One document evaluated (nothing is saved); refused (422) above the cost limit, stopped at the deadline."""
    with _bounded(deadline):
        kind, resolved = _checked(document, catalog)
        return _evaluated(kind, resolved, catalog)


def is_heavy(document: BaseModel, points: int = 1) -> bool:
    """Whether a request belongs in the heavy pool, judged without resolving anything: plan searches,
    serving simulations, and sweeps of more than `heavy_sweep_points` points."""
    return kind_of(document).heavy or points > get_limits().heavy_sweep_points


def check_evaluable(document: BaseModel | dict[str, Any], catalog: Catalog) -> None:
    """Raises (InputError, 422) unless the document can be evaluated: resolved, within the cost
    limits and, when cheap, evaluated once under the evaluation deadline. For the save endpoint:
    nothing saved answers 500 later."""
    parsed = parse_document(document) if isinstance(document, dict) else document
    deadline = Deadline(get_limits().evaluation_deadline_s)
    try:
        with _bounded(deadline):
            kind, resolved = _checked(parsed, catalog)
            if not kind.work(resolved).heavy:
                kind.evaluate(resolved)
    except DeadlinePassed:
        raise InputError("(inputs)", f"these inputs did not evaluate within {deadline.seconds:g} s") from None


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
    with _bounded(None):
        kind = kind_of(document)
        result = _evaluated(kind, kind.resolve(document.inputs, catalog), catalog)  # type: ignore[attr-defined]
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


def sweep(
    document: BaseModel, catalog: Catalog, axes: list[SweepAxis], deadline: Deadline | None = None
) -> SweepResult:
    """One or two numeric inputs swept over values (the grid's cost checked first, chunks under the deadline)."""
    with _bounded(deadline):
        kind = kind_of(document)
        result = run_sweep(kind, document.inputs, catalog, axes, check_work=check_work)  # type: ignore[attr-defined]
        return sweep_bands(kind, kind.resolve(document.inputs, catalog), result, catalog)  # type: ignore[attr-defined]


def sweep_axes(document: BaseModel, catalog: Catalog) -> dict[str, float]:
    """Every input path a sweep may take for this document, with its current value (SI units)."""
    kind = kind_of(document)
    paths: dict[str, float] = sweepable_paths(kind.resolve(document.inputs, catalog))  # type: ignore[attr-defined]
    return paths


def compare_items(
    items: list[str | BaseModel], store: Store, catalog: Catalog, deadline: Deadline | None = None
) -> Comparison:
    """Saved scenario ids (cached results) or inline documents compared against the first."""
    documents, results = [], []
    with _bounded(deadline):
        for item in items:
            if isinstance(item, str):
                saved = saved_result(store, item, catalog)
                documents.append(saved.document)
                results.append(saved.result)
            else:
                documents.append(document_json(item))
                kind, resolved = _checked(item, catalog)
                results.append(_evaluated(kind, resolved, catalog))
    return compare(documents, results)
