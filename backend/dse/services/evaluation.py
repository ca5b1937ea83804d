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
from collections.abc import Iterator, Sequence
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
    "ALL_STUDIES",
    "SavedResult",
    "cached_evaluation",
    "cached_only",
    "check_cost",
    "check_evaluable",
    "compare_items",
    "evaluate",
    "evaluate_json",
    "is_heavy",
    "is_medium",
    "keep_result",
    "result_cache_key",
    "saved_result",
    "studies_to_include",
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
    """One resolved scenario evaluated (the whole answer), with the error bands of its metrics."""
    return attach_bands(kind, resolved, kind.evaluate(resolved), catalog)


#: `include` naming every deferred study.
ALL_STUDIES = "all"


def studies_to_include(kind: ScenarioKind[Any, Any], include: Sequence[str]) -> list[str]:
    """The deferred studies `include` names (`all`: every one); an unknown key is refused naming `include`."""
    if ALL_STUDIES in include:
        return list(kind.deferred_studies)
    unknown = [key for key in include if key not in kind.deferred_studies]
    if unknown:
        known = ", ".join(kind.deferred_studies) or "none"
        raise InputError("include", f"no deferred study {unknown[0]!r} in kind {kind.kind!r} (it has: {known})")
    return list(include)


def evaluate(
    document: BaseModel, catalog: Catalog, deadline: Deadline | None = None, include: Sequence[str] | None = None
) -> EvaluationResult:
    """One document evaluated (nothing is saved); refused (422) above the cost limit, stopped at the deadline.

    `include`: None for the whole answer; else the quick answer with only these deferred studies
    (`ScenarioKind.deferred_studies`; the others are listed in the result's `deferred`)."""
    with _bounded(deadline):
        kind, resolved = _checked(document, catalog)
        if include is None:
            return _evaluated(kind, resolved, catalog)
        result = kind.evaluate_including(resolved, studies_to_include(kind, include))
        return attach_bands(kind, resolved, result, catalog)


def check_cost(document: BaseModel, catalog: Catalog, deadline: Deadline | None = None) -> None:
    """Raises (InputError, 422) when the document cannot be resolved or costs more than a request may:
    heavy work is priced here, in the server, before a worker process is asked to run it."""
    with _bounded(deadline):
        _checked(document, catalog)


def evaluate_json(
    catalog: Catalog, deadline: Deadline, document: dict[str, Any], include: Sequence[str] | None = None
) -> bytes:
    """`evaluate` of a document given as plain JSON, answered as JSON bytes: what a heavy worker
    process runs (dse.services.pools; documents and results cross the process boundary as JSON)."""
    return evaluate(parse_document(document), catalog, deadline, include).model_dump_json().encode("utf-8")


def is_heavy(document: BaseModel, points: int = 1) -> bool:
    """Whether a request belongs in the heavy pool, judged without resolving anything: plan searches,
    serving simulations, and sweeps of more than `heavy_sweep_points` points."""
    return kind_of(document).heavy or points > get_limits().heavy_sweep_points


def is_medium(document: BaseModel) -> bool:
    """Whether a (not heavy) request belongs in the medium pool: the kind judges its inputs
    (`ScenarioKind.is_medium`: PIM inference, pruning), nothing resolved."""
    kind = kind_of(document)
    return not kind.heavy and kind.is_medium(document.inputs)  # type: ignore[attr-defined]


def check_evaluable(
    document: BaseModel | dict[str, Any], catalog: Catalog, deadline: Deadline | None = None
) -> EvaluationResult | None:
    """Raises (InputError, 422) unless the document can be evaluated: resolved, within the cost
    limits and, when cheap, evaluated once under the evaluation deadline. For the save endpoint:
    nothing saved answers 500 later. Returns that evaluation (the whole answer, as a saved scenario's
    result is: the save keeps it, so the first read of the result does not repeat it); None for heavy work.
    """
    parsed = parse_document(document) if isinstance(document, dict) else document
    deadline = deadline if deadline is not None else Deadline(get_limits().evaluation_deadline_s)
    try:
        with _bounded(deadline):
            kind, resolved = _checked(parsed, catalog)
            if kind.work(resolved).heavy:
                return None
            return _evaluated(kind, resolved, catalog)
    except DeadlinePassed:
        raise InputError("(inputs)", f"these inputs did not evaluate within {deadline.seconds:g} s") from None


def result_cache_key(kind: ScenarioKind[Any, Any]) -> str:
    """The key a saved scenario's result is cached under: engine version and result format together."""
    return f"{kind.engine_version}+result-format-{RESULT_FORMAT}"


def cached_only(store: Store, scenario_id: str, document: BaseModel) -> EvaluationResult | None:
    """The cached result of a saved scenario when this engine version computed it in this format, else None.

    The cache is the store's table: every server process of one store shares it."""
    cached = store.cached_result(scenario_id, result_cache_key(kind_of(document)))
    if cached is not None:
        with contextlib.suppress(ValidationError):  # a cached result that no longer parses is recomputed
            return EvaluationResult.model_validate(cached)
    return None


def keep_result(store: Store, scenario_id: str, document: BaseModel, result: dict[str, Any]) -> None:
    """Caches a saved scenario's result (JSON form); a result the cache cannot keep is still the answer."""
    with contextlib.suppress(StoreError):
        store.cache_result(scenario_id, result_cache_key(kind_of(document)), result)


def cached_evaluation(store: Store, scenario_id: str, document: BaseModel, catalog: Catalog) -> EvaluationResult:
    """The result of a saved scenario, from the cache when this engine version computed it in this format."""
    cached = cached_only(store, scenario_id, document)
    if cached is not None:
        return cached
    with _bounded(None):
        kind = kind_of(document)
        result = _evaluated(kind, kind.resolve(document.inputs, catalog), catalog)  # type: ignore[attr-defined]
    keep_result(store, scenario_id, document, result.model_dump(mode="json"))
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
