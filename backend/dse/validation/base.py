"""Rows of the validation table: a published figure, the engine's number, the relative error."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from dse.catalog import Catalog
from dse.scenarios.documents import evaluate_document, parse_document
from dse.scenarios.registry import KINDS
from dse.scenarios.vocabulary import PublishedFigure


@dataclass(frozen=True)
class Check:
    """One published figure and how to compute the engine's number for it (in the same unit)."""

    quantity: str
    published: float
    unit: str
    source: str
    compute: Callable[[Catalog], float]
    #: Largest accepted |engine / published - 1|; None when the check is a band or only informative.
    tolerance_relative: float | None = None
    #: Accepted range of engine / published, for one-sided bounds (e.g. "faster, within 2x").
    ratio_band: tuple[float, float] | None = None
    note: str = ""


class ValidationRow(BaseModel):
    kind: str
    quantity: str
    published: float | str | None
    engine: float | None
    unit: str = ""
    relative_error: float | None = None
    tolerance: str = ""
    within_tolerance: bool | None = None
    source: str = ""
    origin: str = ""
    note: str = ""
    error: str | None = None


def _tolerance_label(tolerance: float | tuple[float, float] | None) -> str:
    if isinstance(tolerance, tuple):
        return f"{tolerance[0]:g} ≤ engine/published ≤ {tolerance[1]:g}"
    if tolerance is None:
        return ""
    return "exact (float rounding)" if tolerance <= 1e-6 else f"±{tolerance * 100:g}%"


def _within(tolerance: float | tuple[float, float] | None, engine: float, published: float) -> bool | None:
    if tolerance is None or published == 0:
        return None
    ratio = engine / published
    if isinstance(tolerance, tuple):
        return tolerance[0] <= ratio <= tolerance[1]
    return abs(ratio - 1) <= tolerance


def _tolerance_text(check: Check) -> str:
    return _tolerance_label(check.ratio_band if check.ratio_band is not None else check.tolerance_relative)


def run_check(kind: str, check: Check, catalog: Catalog) -> ValidationRow:
    """The row of one check; an exception becomes the row's error."""
    row = ValidationRow(
        kind=kind,
        quantity=check.quantity,
        published=check.published,
        engine=None,
        unit=check.unit,
        tolerance=_tolerance_text(check),
        source=check.source,
        origin="engine check",
        note=check.note,
    )
    try:
        engine = float(check.compute(catalog))
    except Exception as exc:  # a failing engine is shown, not raised
        return row.model_copy(update={"error": f"{type(exc).__name__}: {exc}"})
    if not math.isfinite(engine):
        return row.model_copy(update={"error": "the engine returned a non-finite number"})
    error = engine / check.published - 1 if check.published else None
    tolerance = check.ratio_band if check.ratio_band is not None else check.tolerance_relative
    within = _within(tolerance, engine, check.published)
    return row.model_copy(update={"engine": engine, "relative_error": error, "within_tolerance": within})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


Tolerance = float | tuple[float, float]


def _kind_module(kind_name: str) -> Any:
    try:
        return importlib.import_module(f"dse.validation.{kind_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"dse.validation.{kind_name}":
            return None
        raise


def _reference_tolerance(kind_name: str, quantity: str) -> Tolerance | None:
    """The tolerance `dse.validation.<kind>.REFERENCE_TOLERANCES` gives a quantity (matched by prefix)."""
    module = _kind_module(kind_name)
    table: dict[str, Tolerance] = getattr(module, "REFERENCE_TOLERANCES", {}) if module else {}
    return next((t for prefix, t in table.items() if quantity.startswith(prefix)), None)


def _reference_excluded(kind_name: str, quantity: str) -> bool:
    """References `dse.validation.<kind>.REFERENCE_NOT_VALIDATION` names (by prefix) compare a
    published setting with the scenario's own input; they are context, not a check of the engine."""
    module = _kind_module(kind_name)
    prefixes: tuple[str, ...] = getattr(module, "REFERENCE_NOT_VALIDATION", ()) if module else ()
    return quantity.startswith(prefixes)


def reference_rows(kind_name: str, catalog: Catalog) -> list[ValidationRow]:
    """The published figures the kind's example scenarios cite (EvaluationResult.references).

    Only references with both a numeric published figure and an engine number become rows;
    the same reference cited by several examples is listed once per distinct engine number.
    References that state a constraint ("holds": the scenario's own budget is met) are no
    validation and are left out.
    """
    kind = KINDS[kind_name]
    rows: list[ValidationRow] = []
    seen: set[tuple[str, float | None, float | None]] = set()
    try:
        examples = kind.examples()
    except Exception as exc:
        return [ValidationRow(kind=kind_name, quantity="examples", published=None, engine=None, error=str(exc))]
    for doc in examples:
        try:
            result = evaluate_document(parse_document(doc), catalog)
        except Exception as exc:
            rows.append(
                ValidationRow(
                    kind=kind_name,
                    quantity=f"example '{doc.get('name', '?')}'",
                    published=None,
                    engine=None,
                    origin="example scenario",
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
            continue
        for ref in result.references:
            published, engine = _number(ref.get("published")), _number(ref.get("engine"))
            if published is None or engine is None or "holds" in ref:
                continue
            quantity = str(ref.get("quantity") or ref.get("what") or ref.get("claim") or "reference")
            if _reference_excluded(kind_name, quantity):
                continue
            key = (quantity, published, round(engine, 12))
            if key in seen:
                continue
            seen.add(key)
            error = engine / published - 1 if published else None
            tolerance: Tolerance | None = _number(ref.get("tolerance"))
            if tolerance is None:
                tolerance = _reference_tolerance(kind_name, quantity)
            rows.append(
                ValidationRow(
                    kind=kind_name,
                    quantity=quantity,
                    published=published,
                    engine=engine,
                    unit=str(ref.get("unit", "")),
                    relative_error=error,
                    tolerance=_tolerance_label(tolerance),
                    within_tolerance=_within(tolerance, engine, published),
                    source=str(ref.get("source", "")),
                    origin=f"example: {doc.get('name', '')}",
                    note=str(ref.get("note", "")),
                )
            )
    return rows


def kind_checks(kind_name: str) -> list[Check]:
    """The explicit checks of `dse.validation.<kind>`; none when that module does not exist."""
    module = _kind_module(kind_name)
    checks: list[Check] = module.checks() if module is not None and hasattr(module, "checks") else []
    return checks


def kind_rows(kind_name: str, catalog: Catalog) -> list[ValidationRow]:
    try:
        checks = kind_checks(kind_name)
    except Exception as exc:
        failed = ValidationRow(
            kind=kind_name, quantity=f"dse.validation.{kind_name}", published=None, engine=None, error=str(exc)
        )
        return [failed, *reference_rows(kind_name, catalog)]
    return (
        [published_row(kind_name, figure, catalog) for figure in KINDS[kind_name].published_figures()]
        + [run_check(kind_name, c, catalog) for c in checks]
        + reference_rows(kind_name, catalog)
    )


def published_row(kind: str, figure: PublishedFigure, catalog: Catalog) -> ValidationRow:
    """The row of one published-figure record (TRANSITIONAL shape until the page reads PublishedComparison)."""
    row = ValidationRow(
        kind=kind,
        quantity=figure.quantity,
        published=figure.published,
        engine=None,
        unit=figure.unit,
        tolerance=figure.tolerance.label,
        source=figure.source,
        origin="published figure",
        note=figure.known_miss or figure.note,
    )
    try:
        comparison = figure.compare(catalog)
    except Exception as exc:  # a failing engine is shown, not raised
        return row.model_copy(update={"error": f"{type(exc).__name__}: {exc}"})
    return row.model_copy(
        update={
            "engine": comparison.engine,
            "relative_error": comparison.relative_error,
            "within_tolerance": comparison.within_tolerance,
        }
    )


def validation_rows(catalog: Catalog) -> dict[str, list[ValidationRow]]:
    """Every registered kind's rows."""
    return {name: kind_rows(name, catalog) for name in KINDS}
