"""The Validation table: every kind's published figures beside the engine's numbers, typed.

A kind's rows come from its `published_figures()` records (kinds/<kind>/published.py), the same
records tests/validation/test_published_figures.py holds within their tolerance, so the page and the
tests cannot drift. A row whose computation fails carries the error instead of breaking the table.

TRANSITIONAL: kinds not yet moved into `dse.scenarios.kinds.<kind>` also get the rows of the legacy
`dse.validation.<kind>` module and of the references their examples cite (`legacy_rows`, one function
to delete, with the `dse.validation` package, once every kind has moved).

Rows depend only on the kind's engine version and the (fixed) catalog, so each kind's rows are computed
once per process; concurrent cold requests compute them once (single-flight) and share the answer.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from dse.catalog import Catalog
from dse.scenarios.registry import KINDS
from dse.scenarios.vocabulary import PublishedComparison, PublishedFigure, Tolerance

__all__ = ["ValidationRow", "ValidationTable", "all_validation_rows", "kind_rows", "record_row", "validation_rows"]


class ValidationRow(PublishedComparison):
    """One row of the Validation table: a published comparison of one kind."""

    kind: str
    key: str = Field("", description="The record's key in the kind's published figures ('' for legacy rows).")
    known_miss: str | None = Field(
        None, description="Why the engine is known not to reproduce this figure (its test is a strict xfail)."
    )
    error: str | None = Field(None, description="Why the engine's number could not be computed, if it could not.")


def record_row(kind_name: str, figure: PublishedFigure, catalog: Catalog) -> ValidationRow:
    """The row of one published-figure record; a failing engine is shown, not raised."""
    static = dict(
        kind=kind_name,
        key=figure.key,
        quantity=figure.quantity,
        published=figure.published,
        unit=figure.unit,
        tolerance=figure.tolerance,
        tolerance_label=figure.tolerance.label,
        source=figure.source,
        note=figure.note,
        known_miss=figure.known_miss,
    )
    try:
        comparison = figure.compare(catalog)
    except Exception as exc:  # a failing engine is shown, not raised
        return ValidationRow.model_validate({**static, "error": f"{type(exc).__name__}: {exc}"})
    error = None if comparison.engine is not None else "the engine returned a non-finite number"
    return ValidationRow.model_validate({**comparison.model_dump(), **static, "error": error})


def _has_moved(kind_name: str) -> bool:
    """Whether the kind lives in its folder `dse.scenarios.kinds.<kind>` (its records are then complete)."""
    return type(KINDS[kind_name]).__module__.startswith(f"dse.scenarios.kinds.{kind_name}")


def kind_rows(kind_name: str, catalog: Catalog) -> list[ValidationRow]:
    """Every row of one kind, computed now (uncached: see `validation_rows`)."""
    try:
        figures = list(KINDS[kind_name].published_figures())
    except Exception as exc:
        rows = [
            ValidationRow(
                kind=kind_name,
                quantity=f"published figures of {kind_name}",
                published=None,
                source="",
                error=f"{type(exc).__name__}: {exc}",
            )
        ]
    else:
        rows = [record_row(kind_name, figure, catalog) for figure in figures]
    if not _has_moved(kind_name):
        rows += legacy_rows(kind_name, catalog)
    return rows


# --- TRANSITIONAL: the legacy rows of kinds not yet moved into their folder --------------------------------
# Delete `legacy_rows` (and its call in `kind_rows`) together with the `dse.validation` package once every
# kind's published figures are records in kinds/<kind>/published.py.


def legacy_rows(kind_name: str, catalog: Catalog) -> list[ValidationRow]:
    """TRANSITIONAL: the checks of `dse.validation.<kind>` and the numeric references the kind's examples cite.

    Checks first, then references. Only references with both a numeric published figure and an engine
    number become rows, once per distinct engine number; references that state a constraint ("holds")
    or that `REFERENCE_NOT_VALIDATION` names (a published setting beside the scenario's own input) are
    left out; `REFERENCE_TOLERANCES` gives a reference without its own tolerance one (by prefix).
    """
    import importlib

    from dse.scenarios.documents import evaluate_document, parse_document

    def number(value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if math.isfinite(value) else None

    def tolerance_of(value: float | tuple[float, float] | None) -> Tolerance | None:
        if isinstance(value, tuple):
            return Tolerance.band(*value)
        return None if value is None else Tolerance.within(value)

    def failed(quantity: str, exc: BaseException | str, note: str = "") -> ValidationRow:
        error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        return ValidationRow(kind=kind_name, quantity=quantity, published=None, source="", note=note, error=error)

    try:
        module: Any = importlib.import_module(f"dse.validation.{kind_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"dse.validation.{kind_name}":
            return [failed(f"dse.validation.{kind_name}", exc)]
        module = None
    except Exception as exc:
        return [failed(f"dse.validation.{kind_name}", exc)]

    rows: list[ValidationRow] = []
    try:
        checks = module.checks() if module is not None and hasattr(module, "checks") else []
    except Exception as exc:
        rows.append(failed(f"dse.validation.{kind_name}", exc))
        checks = []
    for check in checks:
        tolerance = tolerance_of(check.ratio_band if check.ratio_band is not None else check.tolerance_relative)
        try:
            engine = float(check.compute(catalog))
        except Exception as exc:  # a failing engine is shown, not raised
            rows.append(
                ValidationRow(
                    kind=kind_name,
                    quantity=check.quantity,
                    published=check.published,
                    unit=check.unit,
                    tolerance=tolerance,
                    tolerance_label=tolerance.label if tolerance else "",
                    source=check.source,
                    note=check.note,
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
            continue
        comparison = PublishedComparison.of(
            quantity=check.quantity,
            published=check.published,
            engine=engine,
            source=check.source,
            unit=check.unit,
            tolerance=tolerance,
            note=check.note,
        )
        error = None if comparison.engine is not None else "the engine returned a non-finite number"
        rows.append(ValidationRow(**comparison.model_dump(), kind=kind_name, error=error))

    tolerances: dict[str, Any] = getattr(module, "REFERENCE_TOLERANCES", {}) if module else {}
    context: tuple[str, ...] = getattr(module, "REFERENCE_NOT_VALIDATION", ()) if module else ()
    try:
        examples = KINDS[kind_name].examples()
    except Exception as exc:
        return [*rows, failed("examples", exc)]
    seen: set[tuple[str, float, float]] = set()
    for doc in examples:
        try:
            result = evaluate_document(parse_document(doc), catalog)
        except Exception as exc:
            rows.append(failed(f"example '{doc.get('name', '?')}'", exc))
            continue
        for ref in result.references:
            cited, computed = number(ref.get("published")), number(ref.get("engine"))
            if cited is None or computed is None or "holds" in ref:
                continue
            quantity = str(ref.get("quantity") or ref.get("what") or ref.get("claim") or "reference")
            if quantity.startswith(context) or (quantity, cited, round(computed, 12)) in seen:
                continue
            seen.add((quantity, cited, round(computed, 12)))
            own = number(ref.get("tolerance"))
            prefixed = next((t for prefix, t in tolerances.items() if quantity.startswith(prefix)), None)
            note = str(ref.get("note", ""))
            comparison = PublishedComparison.of(
                quantity=quantity,
                published=cited,
                engine=computed,
                source=str(ref.get("source", "")),
                unit=str(ref.get("unit", "")),
                tolerance=tolerance_of(own if own is not None else prefixed),
                note=(f"{note} · " if note else "") + f"from the example '{doc.get('name', '')}'",
            )
            rows.append(ValidationRow(**comparison.model_dump(), kind=kind_name))
    return rows


# --- end of TRANSITIONAL ------------------------------------------------------------------------------------


@dataclass
class _Entry:
    catalog: Catalog  # held so that id(catalog) in the key cannot be reused by another catalog
    lock: threading.Lock = field(default_factory=threading.Lock)
    rows: list[ValidationRow] | None = None


class ValidationTable:
    """Each kind's rows computed once per (kind, engine version, catalog); concurrent cold calls compute once."""

    def __init__(self, compute: Callable[[str, Catalog], list[ValidationRow]] | None = None) -> None:
        self._compute = compute
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, int], _Entry] = {}

    def rows(self, kind_name: str, catalog: Catalog) -> list[ValidationRow]:
        """The rows of one registered kind (KeyError for an unknown kind)."""
        key = (kind_name, KINDS[kind_name].engine_version, id(catalog))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.catalog is not catalog:
                entry = self._entries[key] = _Entry(catalog)
        with entry.lock:  # the first caller computes; the others wait here and read its rows
            if entry.rows is None:
                entry.rows = (self._compute or kind_rows)(kind_name, catalog)
            return entry.rows

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_TABLE = ValidationTable()


def validation_rows(kind_name: str, catalog: Catalog) -> list[ValidationRow]:
    """The rows of one registered kind (computed once per process; KeyError for an unknown kind)."""
    return _TABLE.rows(kind_name, catalog)


def all_validation_rows(catalog: Catalog) -> dict[str, list[ValidationRow]]:
    """Every registered kind's rows."""
    return {kind_name: validation_rows(kind_name, catalog) for kind_name in KINDS}
