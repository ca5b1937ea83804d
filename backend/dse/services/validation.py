"""The Validation table: every kind's published figures beside the engine's numbers, typed.

A kind's rows come from its `published_figures()` records (kinds/<kind>/published.py), the same
records tests/validation/test_published_figures.py holds within their tolerance, so the page and the
tests cannot drift. A row whose computation fails carries the error instead of breaking the table.

Rows depend only on the kind's engine version and the (fixed) catalog, so each kind's rows are computed
once per process; concurrent cold requests compute them once (single-flight) and share the answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import Field

from dse.catalog import Catalog
from dse.scenarios.registry import KINDS
from dse.scenarios.vocabulary import PublishedComparison, PublishedFigure

__all__ = ["ValidationRow", "ValidationTable", "all_validation_rows", "kind_rows", "record_row", "validation_rows"]


class ValidationRow(PublishedComparison):
    """One row of the Validation table: a published comparison of one kind."""

    kind: str
    key: str = Field("", description="The record's key in the kind's published figures.")
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
    return rows




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
