"""Error bands on every time- and throughput-like metric, from the residuals of the published figures.

Each engine is tested against published figures (kinds/<kind>/published.py); every Validation row names
its group, "kind/accelerator/dtype" (dse.services.validation). The residuals of one group are the
time-like and rate-like rows (durations, work per second, shares of a peak rate) that are not exact
formulas, each as a factor f = engine time / published time (for a rate: published / engine). Known
misses count: they are real errors of the engine, so a band that left them out would flatter it.

A metric's band is where its measured value likely lies: for a duration the engine's value times the
P10/P50/P90 of 1/f, for a rate times those of f. A calibration point (a constant was set from it) is
no evidence and is left out; figures in a fit's own data stay, counted in the band (they are optimistic).
With fewer than MIN_QUANTILE_RESIDUALS residuals the band is a stated interval instead: the widest of the
residuals and of the intervals their tests allow.
A scenario whose accelerator or dtype no time or throughput figure of its engine was checked on is
outside what was validated: it gets the engine's pooled band and a note saying so; so does one far beyond
the scale (accelerators) of the validated runs, where the records state it (the band stays its group's).

For a search (`ranking` of its kind) the result also says how likely its best answer beats the
runner-up: with the engine's errors on the two answers log-normal with the group's spread and a
correlation (estimated from the group's published ratios when there are enough, else assumed), the
probability that the measured runner-up is slower.

The residual table is built once per (kind, engine version, catalog) from the cached Validation rows;
a band then costs a few multiplications per metric.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from dse.catalog import Catalog
from dse.scenarios.base import EvaluationResult, ScenarioKind
from dse.scenarios.registry import KINDS
from dse.scenarios.shared.palette import BAND_FILL
from dse.scenarios.sweep import SweepResult
from dse.scenarios.vocabulary import MetricBand, MetricSpec, RankingConfidence, RelativeBand, ValidationScope
from dse.services.validation import (
    TIME_UNITS,
    ValidationRow,
    accelerator_family,
    install_validation_rows,
    is_exact,
    validation_rows,
)

__all__ = [
    "MIN_QUANTILE_RESIDUALS",
    "STATED_CORRELATION",
    "BandBasis",
    "Residual",
    "attach_bands",
    "band_basis",
    "metric_band",
    "metric_band_kind",
    "ranking_probability",
    "relative_band",
    "relative_metric_band",
    "residuals_of",
    "scenario_scope",
    "sweep_bands",
    "validation_tables",
    "warm_residuals",
]

#: Fewer residuals than this give a stated interval, not quantiles (P10 and P90 of 4 points are the extremes).
MIN_QUANTILE_RESIDUALS = 5
#: Correlation of the engine's errors on two answers of one search when the group has too few published
#: ratios to estimate it: both are priced by one model on one cluster, so much of their error is shared.
STATED_CORRELATION = 0.5
#: Published ratios (speed-ups of one setting over another) needed to estimate that correlation.
MIN_RATIO_RESIDUALS = 3
#: The estimated correlation is kept below this: a perfect one would make any margin a certainty.
MAX_CORRELATION = 0.95
BandKind = Literal["time", "rate"]


@dataclass(frozen=True)
class Residual:
    """One published figure's error as a time factor: engine time / published time (for a rate, the inverse)."""

    key: str
    group: str
    factor: float
    #: The interval of `factor` the figure's test allows.
    allowed: tuple[float, float]
    known_miss: bool
    #: Accelerators the measured run used, where stated.
    devices: float | None = None
    #: Whether the figure's data is in a fit the engine uses (its error is optimistic).
    in_sample: bool = False


def _allowed(row: ValidationRow) -> tuple[float, float]:
    """engine / published interval the row's tolerance allows."""
    tolerance = row.tolerance
    if tolerance is None:
        return (math.nan, math.nan)
    if tolerance.relative is not None:
        return (1.0 - tolerance.relative, 1.0 + tolerance.relative)
    low = 0.0 if tolerance.ratio_low is None else tolerance.ratio_low
    high = math.inf if tolerance.ratio_high is None else tolerance.ratio_high
    return (low, high)


def residuals_of(rows: Sequence[ValidationRow], measures: frozenset[str]) -> list[Residual]:
    """The rows of `measures` with a finite error, not exact formulas, as time factors (ratios stay ratios)."""
    out = []
    for row in rows:
        if row.measure not in measures or row.relative_error is None or row.role != "validation" or is_exact(row):
            continue
        if row.fit == "calibration":  # matches by construction: no evidence either way
            continue
        ratio = 1.0 + row.relative_error
        low, high = _allowed(row)
        if row.measure == "rate":  # a rate's time factor is published / engine
            factor, allowed = 1.0 / ratio, (1.0 / high if high > 0 else math.inf, 1.0 / low if low > 0 else math.inf)
        else:
            factor, allowed = ratio, (low, high)
        if factor > 0 and math.isfinite(factor):
            out.append(
                Residual(
                    row.key, row.group, factor, allowed, row.known_miss is not None, row.devices, row.fit == "in-sample"
                )
            )
    return out


def relative_band(residuals: Sequence[Residual], band: BandKind) -> tuple[tuple[float, float, float], str]:
    """(P10, P50, P90) of measured / engine for a metric of `band`, and the method ("quantiles" or
    "stated-interval"). Measured / engine is 1/f for a duration, f for a rate."""
    factors = np.array([r.factor for r in residuals], dtype=float)
    measured = 1.0 / factors if band == "time" else factors
    if len(residuals) >= MIN_QUANTILE_RESIDUALS:
        p10, p50, p90 = np.quantile(measured, [0.1, 0.5, 0.9])
        return (float(p10), float(p50), float(p90)), "quantiles"
    edges = [edge for r in residuals for edge in r.allowed if math.isfinite(edge) and edge > 0]
    allowed = np.array(edges, dtype=float)
    allowed = 1.0 / allowed if band == "time" else allowed
    hull = np.concatenate([measured, allowed])
    return (float(hull.min()), float(np.median(measured)), float(hull.max())), "stated-interval"


def metric_band_kind(spec: MetricSpec) -> BandKind | None:
    """How validation errors map onto a metric: its spec's `band`, else from its unit."""
    if spec.band is not None:
        return None if spec.band == "none" else spec.band
    if spec.boolean:
        return None
    unit = spec.unit.strip()
    if unit in TIME_UNITS:
        return "time"
    if unit.endswith("/s"):
        return "rate"
    return None


@dataclass
class BandBasis:
    """The residuals one scenario's bands come from, and whether the scenario is inside what was validated."""

    scope: ValidationScope
    group: str  # the group the residuals come from (the scenario's, or the engine's pooled "kind/all")
    residuals: tuple[Residual, ...]
    ratios: tuple[Residual, ...]

    @cached_property
    def relative(self) -> dict[BandKind, tuple[tuple[float, float, float], str]]:
        """`relative_band` of the residuals for a duration and for a rate, worked out once."""
        if not self.residuals:
            return {}
        return {band: relative_band(self.residuals, band) for band in ("time", "rate")}

    @cached_property
    def known_misses(self) -> int:
        return sum(r.known_miss for r in self.residuals)

    @cached_property
    def in_sample(self) -> int:
        return sum(r.in_sample for r in self.residuals)

    #: `relative_metric_band` per kind of band, once worked out.
    described: dict[str, RelativeBand] = field(default_factory=dict)


@dataclass
class _KindResiduals:
    catalog: Catalog  # held so that id(catalog) in the key cannot be reused by another catalog
    times: tuple[Residual, ...]
    ratios: tuple[Residual, ...]
    #: Each scenario group's basis, built on first use.
    bases: dict[str, BandBasis] = field(default_factory=dict)


_LOCK = threading.Lock()
_TABLES: dict[tuple[str, str, int], _KindResiduals] = {}


def _kind_residuals(kind_name: str, catalog: Catalog) -> _KindResiduals:
    """The time/rate and ratio residuals of one kind, built once per (kind, engine version, catalog)."""
    key = (kind_name, KINDS[kind_name].engine_version, id(catalog))
    with _LOCK:
        entry = _TABLES.get(key)
    if entry is not None and entry.catalog is catalog:
        return entry
    rows = validation_rows(kind_name, catalog)  # single-flight and cached itself
    entry = _KindResiduals(
        catalog,
        tuple(residuals_of(rows, frozenset({"time", "rate"}))),
        tuple(residuals_of(rows, frozenset({"ratio"}))),
    )
    with _LOCK:
        _TABLES[key] = entry
    return entry


def warm_residuals(catalog: Catalog, rows: Mapping[str, list[ValidationRow]] | None = None) -> None:
    """Builds every kind's residual table now, so that no evaluation pays the ~3 s (on one core) of
    recomputing the published figures. `rows`: each kind's Validation rows computed in another process (a
    heavy worker, `validation_tables`), installed here rather than computed."""
    for kind_name in KINDS:
        if rows is not None and kind_name in rows:
            install_validation_rows(kind_name, catalog, rows[kind_name])
        _kind_residuals(kind_name, catalog)


def validation_tables(catalog: Catalog, deadline: object = None) -> dict[str, list[ValidationRow]]:
    """Every kind's Validation rows, built (and kept) in this process: what a heavy worker process sends the
    server at start (a `HeavyProcessPool` task; `deadline` unused: the rows are built when the worker starts)."""
    warm_residuals(catalog)
    return {kind_name: validation_rows(kind_name, catalog) for kind_name in KINDS}


def _accelerator_label(spec: Any, catalog: Catalog) -> str:
    """The chip of a scenario's accelerator; "custom" for an inline spec that is no catalog preset."""
    spec_id = getattr(spec, "id", None)
    if not isinstance(spec_id, str):
        return "any"
    try:
        preset = catalog.get("accelerators", spec_id)
    except LookupError:
        preset = None
    return accelerator_family(spec_id) if preset == spec else "custom"


def band_basis(kind: ScenarioKind[Any, Any], resolved: Any, catalog: Catalog) -> BandBasis:
    """Which residuals one scenario's bands come from: its own group's when that was validated, else the
    engine's pooled residuals (with a note saying the scenario is outside what was validated)."""
    source = kind.validated_by or kind.kind
    table = _kind_residuals(source, catalog) if source in KINDS else _KindResiduals(catalog, (), ())
    spec, dtype = kind.validation_group(resolved)
    group = f"{source}/{_accelerator_label(spec, catalog)}/{dtype or 'any'}"
    by = "" if source == kind.kind else f" (this kind is priced by the {source} engine)"
    basis = table.bases.get(group + by)
    if basis is None:
        basis = table.bases[group + by] = _basis(table, group, by)
    return basis


def _basis(table: _KindResiduals, group: str, by: str) -> BandBasis:
    source = group.split("/", 1)[0]
    validated = sorted({r.group for r in table.times})
    own = tuple(r for r in table.times if r.group == group)
    if own:
        # A kind priced by another kind's engine: the bands cover that pricing, not what the kind adds on top.
        borrowed = (
            f"The bands come from the {source} engine's published figures{by}: they cover its pricing of each "
            "step, not what this kind adds on top (the search over plans, or the scheduling and queueing)."
            if by
            else ""
        )
        scope = ValidationScope(group=group, validated=True, validated_groups=validated, note=borrowed)
        return BandBasis(scope, group, own, tuple(r for r in table.ratios if r.group == group))
    if validated:
        note = (
            f"Outside what was validated{by}: time and throughput figures of {source} were checked on "
            f"{', '.join(g.split('/', 1)[1] for g in validated)}, not on {group.split('/', 1)[1]} (accelerator "
            f"or dtype). The bands pool all {len(table.times)} {source} residuals: a guide, not a measurement of "
            "this setting."
        )
    else:
        note = f"No published time or throughput figure validates the {source} engine yet{by}: no error bands."
    scope = ValidationScope(group=group, validated=False, validated_groups=validated, note=note)
    return BandBasis(scope, f"{source}/all", table.times, table.ratios)


#: A scenario more than this factor beyond the smallest or largest validated run is outside the validated scale.
SCALE_SLACK = 2.0


def scenario_scope(kind: ScenarioKind[Any, Any], resolved: Any, basis: BandBasis) -> ValidationScope:
    """The basis's scope with this scenario's scale against the scale of the runs its residuals come from
    (a note when it lies beyond SCALE_SLACK x the largest or below the smallest / SCALE_SLACK)."""
    devices = kind.validation_scale(resolved)
    runs = [r.devices for r in basis.residuals if r.devices is not None]
    if devices is None or not runs:
        return basis.scope if devices is None else basis.scope.model_copy(update={"devices": devices})
    low, high = min(runs), max(runs)
    within = low / SCALE_SLACK <= devices <= high * SCALE_SLACK
    note = basis.scope.note
    if not within:
        scale = (
            f"Outside the validated scale: the time and throughput figures of {basis.group} come from runs on "
            f"{low:g}–{high:g} accelerators; this scenario uses {devices:g}, so its error may exceed the band."
        )
        note = f"{note} {scale}" if note else scale
    return basis.scope.model_copy(
        update={"devices": devices, "validated_devices": [low, high], "within_scale": within, "note": note}
    )


def relative_metric_band(band: BandKind, basis: BandBasis) -> RelativeBand | None:
    """The band of a metric of `band` as factors of its value (None without residuals); worked out once per
    basis and kind of band."""
    cached = basis.described.get(band)
    if cached is not None or not basis.residuals:
        return cached
    (r10, r50, r90), method = basis.relative[band]
    misses = basis.known_misses
    n = len(basis.residuals)
    how = (
        f"P10/P50/P90 of {n} residuals"
        if method == "quantiles"
        else f"too few residuals ({n}) for quantiles: the widest of them and of the intervals their tests allow"
    )
    described = basis.described[band] = RelativeBand(
        relative_p10=r10,
        relative_p50=r50,
        relative_p90=r90,
        group=basis.group,
        residuals=n,
        known_misses=misses,
        method=method,
        in_sample=basis.in_sample,
        note=f"{how} of {basis.group}"
        + (f", {misses} of them known misses (real errors, counted)" if misses else "")
        + (
            f", {basis.in_sample} in a fit's own data (their errors are optimistic for other settings)"
            if basis.in_sample
            else ""
        ),
    )
    return described


def metric_band(value: float, band: BandKind, basis: BandBasis) -> MetricBand | None:
    """The band of one metric value from `basis` (None without residuals or for a value that is not > 0)."""
    relative = relative_metric_band(band, basis)
    if relative is None or not (value > 0 and math.isfinite(value)):
        return None
    if not math.isfinite(value * max(relative.relative_p90, 1.0)):  # near the float limit: no band, not inf
        return None
    return MetricBand(
        **relative.model_dump(),
        p10=value * relative.relative_p10,
        p50=value * relative.relative_p50,
        p90=value * relative.relative_p90,
    )


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def ranking_probability(margin: float, log_error_sd: float, correlation: float) -> float:
    """P(the runner-up is really slower) when the engine says it is slower by `margin` (runner-up / best - 1):
    ln of each answer's error is normal with sd `log_error_sd`, the two correlated by `correlation`."""
    spread = log_error_sd * math.sqrt(max(2.0 * (1.0 - correlation), 0.0))
    log_margin = math.log1p(margin)
    if spread == 0:
        return 1.0 if log_margin > 0 else 0.5 if log_margin == 0 else 0.0
    return _normal_cdf(log_margin / spread)


def _ranking(kind: ScenarioKind[Any, Any], result: EvaluationResult, basis: BandBasis) -> RankingConfidence | None:
    if kind.ranking is None or len(basis.residuals) < 2:
        return None
    table_key, column_key = kind.ranking
    table = next((t for t in result.tables if t.key == table_key), None)
    if table is None or len(table.rows) < 2:
        return None
    index = next((i for i, c in enumerate(table.columns) if c.key == column_key), None)
    if index is None:
        return None
    best, runner_up = table.rows[0][index], table.rows[1][index]
    if not isinstance(best, int | float) or not isinstance(runner_up, int | float) or not best > 0:
        return None
    logs = np.log([r.factor for r in basis.residuals])
    sd = float(np.std(logs, ddof=1))
    ratio_logs = np.log([r.factor for r in basis.ratios])
    if len(ratio_logs) >= MIN_RATIO_RESIDUALS and sd > 0:
        ratio_var = float(np.mean(ratio_logs**2))  # a ratio's error should centre on 0: its spread about 0
        correlation = min(max(1.0 - ratio_var / (2.0 * sd**2), 0.0), MAX_CORRELATION)
        how = (
            f"estimated from the {len(ratio_logs)} published ratios of {basis.group} (their errors' spread "
            "against twice the single answers'), at most 0.95"
        )
    else:
        correlation, how = STATED_CORRELATION, "assumed (too few published ratios to estimate it)"
    margin = float(runner_up) / float(best) - 1.0
    probability = ranking_probability(margin, sd, correlation)
    independent = ranking_probability(margin, sd, 0.0)
    column = table.columns[index]
    return RankingConfidence(
        quantity=column.label,
        best=float(best),
        runner_up=float(runner_up),
        unit=column.unit,
        margin=margin,
        log_error_sd=sd,
        correlation=correlation,
        probability=probability,
        probability_independent=independent,
        group=basis.group,
        note=(
            f"The best answer is {margin:.2%} ahead of the runner-up by the engine; with the engine's error on each "
            f"log-normal (sd {sd:.3f} of ln, from {len(logs)} residuals of {basis.group}) and the two errors "
            f"correlated {correlation:.2f} ({how}), it really is ahead with probability {probability:.0%} "
            f"({independent:.0%} if the errors were independent)."
        ),
    )


def _band_traces(figure: dict[str, Any], basis: BandBasis) -> None:
    """Adds the P10-P90 band to every trace whose `meta.band` says it is a duration or a rate."""
    data = figure.get("data")
    if not isinstance(data, list):
        return
    out: list[Any] = []
    for trace in data:
        meta = trace.get("meta") if isinstance(trace, dict) else None
        band = meta.get("band") if isinstance(meta, dict) else None
        ys = trace.get("y") if band in ("time", "rate") else None
        if not isinstance(ys, list) or not ys:
            out.append(trace)
            continue
        (r10, _, r90), _ = basis.relative["time" if band == "time" else "rate"]
        low = [_finite(y * r10) if isinstance(y, int | float) else None for y in ys]
        high = [_finite(y * r90) if isinstance(y, int | float) else None for y in ys]
        name = "P10–P90 (validation)"
        first = not any(t.get("fill") == "tonexty" and t.get("name") == name for t in out if isinstance(t, dict))
        common = {"x": trace.get("x"), "mode": "lines", "hoverinfo": "skip", "showlegend": False}
        common["legendgroup"] = "validation-band"
        for axis in ("xaxis", "yaxis"):
            if axis in trace:
                common[axis] = trace[axis]
        # Neutral grey, every band of every chart: its one legend entry stands for all of them, and in a
        # series' hue it read as that series (PPO's 8 GPUs line and the band's pink swatch). A colour of its
        # own, too, so that Plotly gives the band none of the palette's.
        out.append({**common, "type": "scatter", "y": low, "line": {"width": 0, "color": BAND_FILL}, "name": name})
        out.append(
            {
                **common,
                "type": "scatter",
                "y": high,
                "line": {"width": 0, "color": BAND_FILL},
                "fill": "tonexty",
                "fillcolor": BAND_FILL,
                "name": name,
                "legendgroup": "validation-band",
                "showlegend": first,
            }
        )
        out.append(trace)
    figure["data"] = out


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def attach_bands(
    kind: ScenarioKind[Any, Any], resolved: Any, result: EvaluationResult, catalog: Catalog
) -> EvaluationResult:
    """`result` with a band on every time- and throughput-like metric, the band on the charts' main
    series, the validation scope (a note when outside what was validated) and, for a search, the ranking
    confidence."""
    basis = band_basis(kind, resolved, catalog)
    metrics = []
    for metric in result.metrics:
        spec = kind.metric_specs.get(metric.key)
        band_kind = metric_band_kind(spec) if spec is not None else None
        value = metric.value
        band = (
            metric_band(float(value), band_kind, basis)
            if band_kind is not None and isinstance(value, int | float) and not isinstance(value, bool)
            else None
        )
        metrics.append(metric.model_copy(update={"band": band}) if band is not None else metric)
    charts = result.charts
    if basis.residuals:
        charts = []
        for chart in result.charts:
            figure = dict(chart.figure)
            _band_traces(figure, basis)
            charts.append(chart.model_copy(update={"figure": figure}))
    scope = scenario_scope(kind, resolved, basis)
    notes = [*result.notes, scope.note] if scope.note else result.notes
    return result.model_copy(
        update={
            "metrics": metrics,
            "charts": charts,
            "notes": notes,
            "validation_scope": scope,
            "ranking": _ranking(kind, result, basis),
        }
    )


def sweep_bands(kind: ScenarioKind[Any, Any], resolved: Any, result: SweepResult, catalog: Catalog) -> SweepResult:
    """A sweep with the relative band of each time- and throughput-like metric (the same factors at every
    point: the group is the base document's) and its validation scope; a note when an axis changes the
    accelerator's own numbers (the band is then that of the preset it started from)."""
    basis = band_basis(kind, resolved, catalog)
    found = {}
    for key in result.metrics:
        spec = kind.metric_specs.get(key)
        band_kind = metric_band_kind(spec) if spec is not None else None
        relative = relative_metric_band(band_kind, basis) if band_kind is not None else None
        if relative is not None:
            found[key] = relative
    scope = scenario_scope(kind, resolved, basis)
    if any("accelerator" in axis.path.split(".") for axis in result.axes):
        moved = "An axis changes the accelerator's numbers: the bands are those of the preset it started from."
        scope = scope.model_copy(update={"note": f"{scope.note} {moved}".strip()})
    return result.model_copy(update={"bands": found, "validation_scope": scope})
