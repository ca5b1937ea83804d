"""The Validation table: every kind's published figures beside the engine's numbers, typed.

A kind's rows come from its `published_figures()` records (kinds/<kind>/published.py), the same
records tests/validation/test_published_figures.py holds within their tolerance, so the page and the
tests cannot drift. A row whose computation fails carries the error instead of breaking the table.

Rows depend only on the kind's engine version and the (fixed) catalog, so each kind's rows are computed
once per process; concurrent cold requests compute them once (single-flight) and share the answer. A
server does not compute them itself: a heavy worker process does at start, and the server installs its
rows (`install_validation_rows`, dse.api.cpu.warm_bands).

Each row also names the group it validates (kind/accelerator/dtype): the accelerator presets the engine
read while computing it (unless the record names one) and the record's or the kind's dtype.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from dse.catalog import Catalog
from dse.scenarios.registry import KINDS
from dse.scenarios.vocabulary import PublishedComparison, PublishedFigure

__all__ = [
    "Measure",
    "RecordingCatalog",
    "ValidationRow",
    "ValidationSummaryRow",
    "ValidationTable",
    "accelerator_family",
    "all_validation_rows",
    "cached_validation_rows",
    "figure_measure",
    "group_label",
    "install_validation_rows",
    "is_exact",
    "kind_rows",
    "record_row",
    "summary_table",
    "validation_rows",
    "validation_summary",
]

Measure = Literal["time", "rate", "ratio", "other"]
#: Units of a duration, and of a ratio of like quantities (a speed-up), as the records write them.
TIME_UNITS = frozenset({"s", "ms", "µs", "us", "ns", "min", "h", "days"})
RATIO_UNITS = frozenset({"x", "ratio"})


def figure_measure(figure: PublishedFigure) -> Measure:
    """What kind of number a record is: its own `measure`, else from its unit (a duration: time; anything
    per second: rate; "x"/"ratio"/"x ...": ratio; else other)."""
    if figure.measure is not None:
        return figure.measure
    unit = figure.unit.strip()
    if unit in TIME_UNITS:
        return "time"
    if unit.endswith("/s"):
        return "rate"
    if unit in RATIO_UNITS or unit.startswith("x "):
        return "ratio"
    return "other"


def accelerator_family(spec_id: str) -> str:
    """The chip of a preset id, as groups name it: "a100-80gb" -> "A100"."""
    return spec_id.split("-")[0].upper()


def group_label(kind_name: str, accelerators: list[str], dtype: str) -> str:
    """ "kind/ACCELERATOR/dtype"; several accelerators are joined by "+", none is "any"."""
    chips = "+".join(sorted({accelerator_family(a) for a in accelerators})) or "any"
    return f"{kind_name}/{chips}/{dtype or 'any'}"


def is_exact(row: PublishedComparison) -> bool:
    """Whether a row checks an exact formula (compared to float rounding), not a measurement."""
    tolerance = row.tolerance
    return tolerance is not None and tolerance.relative is not None and tolerance.relative <= 1e-6


class RecordingCatalog(Catalog):
    """The same presets; remembers which accelerator presets were read (a record's group, derived)."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(catalog.root, catalog._presets)
        self.accelerators: list[str] = []

    def get(self, category: str, preset_id: str) -> Any:
        if category == "accelerators" and preset_id not in self.accelerators:
            self.accelerators.append(preset_id)
        return super().get(category, preset_id)


class ValidationRow(PublishedComparison):
    """One row of the Validation table: a published comparison of one kind."""

    kind: str
    key: str = Field("", description="The record's key in the kind's published figures.")
    known_miss: str | None = Field(
        None, description="Why the engine is known not to reproduce this figure (its test is a strict xfail)."
    )
    error: str | None = Field(None, description="Why the engine's number could not be computed, if it could not.")
    accelerators: list[str] = Field(
        default_factory=list, description="The accelerator presets the figure is about (read by its engine)."
    )
    dtype: str = Field("", description="The dtype the engine priced the figure in ('' = not dtype-dependent).")
    group: str = Field("", description='"kind/accelerator/dtype", the group of the metric bands and the MAE table.')
    measure: Measure = Field("other", description="time, rate (per second, or a share of a peak), ratio or other.")
    devices: float | None = Field(None, description="Accelerators the measured run used, where stated.")
    fit: Literal["prediction", "in-sample", "calibration"] = Field(
        "prediction", description="Out of sample, in a fit's own data, or the point a constant was set from."
    )


def record_row(kind_name: str, figure: PublishedFigure, catalog: Catalog, dtype: str = "") -> ValidationRow:
    """The row of one published-figure record; a failing engine is shown, not raised. `dtype`: the kind's
    (a record's own wins)."""
    # Reads are recorded only for a record that does not name its accelerator: one that does is computed on
    # `catalog` itself, so the engines' per-catalog caches (a whole published table computed once) hold.
    recording = RecordingCatalog(catalog)
    try:
        comparison = figure.compare(catalog if figure.accelerator else recording)
    except Exception as exc:  # a failing engine is shown, not raised
        comparison, failure = None, f"{type(exc).__name__}: {exc}"
    accelerators = [figure.accelerator] if figure.accelerator else recording.accelerators
    dtype = figure.dtype or dtype
    static: dict[str, Any] = dict(
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
        accelerators=accelerators,
        dtype=dtype,
        group=group_label(kind_name, accelerators, dtype),
        measure=figure_measure(figure),
        devices=figure.devices,
        fit=figure.fit,
    )
    if comparison is None:
        return ValidationRow.model_validate({**static, "error": failure})
    error = None if comparison.engine is not None else "the engine returned a non-finite number"
    return ValidationRow.model_validate({**comparison.model_dump(), **static, "error": error})


def kind_rows(kind_name: str, catalog: Catalog) -> list[ValidationRow]:
    """Every row of one kind, computed now (uncached: see `validation_rows`)."""
    try:
        kind = KINDS[kind_name]
        figures = list(kind.published_figures())
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
        rows = [record_row(kind_name, figure, catalog, kind.validation_dtype) for figure in figures]
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

    def cached(self, kind_name: str, catalog: Catalog) -> list[ValidationRow] | None:
        """The kind's rows if this process has computed (or installed) them, else None (nothing is computed)."""
        with self._lock:
            entry = self._entries.get((kind_name, KINDS[kind_name].engine_version, id(catalog)))
        return entry.rows if entry is not None and entry.catalog is catalog else None

    def install(self, kind_name: str, catalog: Catalog, rows: list[ValidationRow]) -> None:
        """Keeps `rows`, computed elsewhere (another process, the same engine version and catalog files), as
        the kind's rows for `catalog`, unless this process has its own already."""
        key = (kind_name, KINDS[kind_name].engine_version, id(catalog))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.catalog is not catalog:
                entry = self._entries[key] = _Entry(catalog)
        with entry.lock:
            if entry.rows is None:
                entry.rows = rows

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_TABLE = ValidationTable()


def cached_validation_rows(catalog: Catalog) -> dict[str, list[ValidationRow]]:
    """The rows of every kind this process has already computed (or installed); computes nothing."""
    found = {kind_name: _TABLE.cached(kind_name, catalog) for kind_name in KINDS}
    return {kind_name: rows for kind_name, rows in found.items() if rows is not None}


def install_validation_rows(kind_name: str, catalog: Catalog, rows: list[ValidationRow]) -> None:
    """`rows` of one kind, computed in another process, kept as this process's (`ValidationTable.install`)."""
    _TABLE.install(kind_name, catalog, rows)


def validation_rows(kind_name: str, catalog: Catalog) -> list[ValidationRow]:
    """The rows of one registered kind (computed once per process; KeyError for an unknown kind)."""
    return _TABLE.rows(kind_name, catalog)


def all_validation_rows(catalog: Catalog) -> dict[str, list[ValidationRow]]:
    """Every registered kind's rows."""
    return {kind_name: validation_rows(kind_name, catalog) for kind_name in KINDS}


class ValidationSummaryRow(BaseModel):
    """The mean absolute error of one engine over one group of its published figures (or all of them)."""

    kind: str
    group: str = Field(description='"kind/accelerator/dtype", or "all" for every figure of the engine.')
    figures: int = Field(description="Published figures with an engine number (exact formulas and known misses too).")
    mean_abs_error: float | None = Field(description="Mean of |engine / published - 1| over them.")
    max_abs_error: float | None = None
    timing_figures: int = Field(
        description="Of them, time and throughput figures, neither exact formulas nor calibration points (the "
        "metric bands' residuals)."
    )
    timing_mean_abs_error: float | None = None
    known_misses: int = 0
    not_computed: int = Field(0, description="Records whose engine number could not be computed (not averaged).")


def _summary_row(kind_name: str, group: str, rows: list[ValidationRow]) -> ValidationSummaryRow:
    judged = [r for r in rows if r.role == "validation" and r.relative_error is not None]
    errors = [abs(r.relative_error) for r in judged if r.relative_error is not None]
    timing = [
        abs(r.relative_error)
        for r in judged
        if r.measure in ("time", "rate") and not is_exact(r) and r.fit != "calibration" and r.relative_error is not None
    ]
    return ValidationSummaryRow(
        kind=kind_name,
        group=group,
        figures=len(errors),
        mean_abs_error=sum(errors) / len(errors) if errors else None,
        max_abs_error=max(errors) if errors else None,
        timing_figures=len(timing),
        timing_mean_abs_error=sum(timing) / len(timing) if timing else None,
        known_misses=sum(1 for r in judged if r.known_miss),
        not_computed=sum(1 for r in rows if r.error),
    )


def validation_summary(catalog: Catalog) -> list[ValidationSummaryRow]:
    """Per engine: one row over all its published figures, then one per group (kind/accelerator/dtype);
    engines without published figures are left out."""
    out: list[ValidationSummaryRow] = []
    for kind_name, rows in all_validation_rows(catalog).items():
        if not rows:
            continue
        out.append(_summary_row(kind_name, "all", rows))
        for group in sorted({r.group for r in rows}):
            out.append(_summary_row(kind_name, group, [r for r in rows if r.group == group]))
    return out


def summary_table(rows: list[ValidationSummaryRow]) -> str:
    """The summary as a Markdown table (the CLI prints it; the README holds it)."""

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f}%"

    lines = [
        "| engine | group (kind/accelerator/dtype) | figures | mean abs error | largest | time/throughput figures "
        "| their mean abs error | known misses |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        group = "**all**" if row.group == "all" else row.group.split("/", 1)[1]
        lines.append(
            f"| {row.kind} | {group} | {row.figures} | {pct(row.mean_abs_error)} | {pct(row.max_abs_error)} "
            f"| {row.timing_figures} | {pct(row.timing_mean_abs_error)} | {row.known_misses} |"
        )
    return "\n".join(lines) + "\n"
