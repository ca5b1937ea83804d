"""The typed words a kind answers with: metrics, tables, charts, published comparisons, links.

Everything here is part of the API (OpenAPI describes it) and is read by the dashboard as typed,
never guessed. Words keep one meaning each:

- a *chart* is a Plotly drawing of this scenario's numbers;
- a *published figure* is a number a paper, datasheet or repository published, with its source;
- a *published comparison* puts one published figure beside the engine's number for it, with the
  tolerance the tests hold it to; *validation* means only that.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, field_validator

if TYPE_CHECKING:
    from dse.catalog import Catalog

#: Bumped when the shape of EvaluationResult (or a table's columns) changes: cached results of an older
#: shape are then never read back.
RESULT_FORMAT = 4


class MetricSpec(BaseModel):
    """What a metric is: its label, unit and formula (the math shown)."""

    label: str
    unit: str
    formula: str = ""
    #: A yes/no metric (e.g. "fits"): its value is a bool, never 1/0.
    boolean: bool = False
    #: How the dashboard shows the value: "percent" shows a fraction (value 0.42, unit "" or "fraction")
    #: as 42 %. The API value stays the SI fraction.
    display: Literal["number", "percent"] = "number"
    #: How the engine's validation error maps onto this metric's band: "time" (a duration: the measured
    #: value is the engine's divided by engine/published time), "rate" (work per second: multiplied), or
    #: "none". None: from the unit (seconds or days: time; anything per second: rate; else none).
    band: Literal["time", "rate", "none"] | None = None
    #: A bit-mask metric (e.g. why a plan is refused): what each bit means, in words. The dashboard shows
    #: the words of the bits a value sets, never the number.
    codes: dict[int, str] = Field(default_factory=dict)


class RelativeBand(BaseModel):
    """Where the measured value of a time- or throughput-like metric likely lies, as factors of the engine's
    value, from the residuals of the published figures its engine is tested against (dse.services.bands)."""

    relative_p10: float = Field(description="p10 / the engine's value.")
    relative_p50: float = Field(description="p50 / the engine's value.")
    relative_p90: float = Field(description="p90 / the engine's value.")
    group: str = Field(description='The residuals\' group, "kind/accelerator/dtype" (e.g. "training/A100/bf16").')
    residuals: int = Field(description="How many published figures the band comes from (known misses included).")
    known_misses: int = Field(0, description="How many of them are known misses (real errors, so they count).")
    in_sample: int = Field(0, description="How many of them are in a fit's own data (their errors are optimistic).")
    method: Literal["quantiles", "stated-interval"] = Field(
        description='"quantiles": P10/P50/P90 of the residuals; "stated-interval": too few residuals for quantiles, '
        "the widest of them and their tests' tolerance."
    )
    note: str = ""


class MetricBand(RelativeBand):
    """A metric's band: the factors and the values they give."""

    p10: float = Field(description="10th percentile of the likely measured value, in the metric's unit.")
    p50: float = Field(description="Median of the likely measured value, in the metric's unit.")
    p90: float = Field(description="90th percentile of the likely measured value, in the metric's unit.")


class ValidationScope(BaseModel):
    """Whether a scenario sits inside what its engine was validated on (accelerator and dtype)."""

    group: str = Field(description='This scenario\'s group, "kind/accelerator/dtype".')
    validated: bool = Field(description="Whether published time or throughput figures of this group were checked.")
    validated_groups: list[str] = Field(default_factory=list, description="The groups that were.")
    devices: float | None = Field(None, description="Accelerators this scenario uses, where its kind says.")
    validated_devices: list[float] = Field(
        default_factory=list, description="The smallest and largest run of the group's figures (accelerators)."
    )
    within_scale: bool | None = Field(
        None, description="Whether `devices` lies within half the smallest and twice the largest validated run."
    )
    note: str = ""


class RankingConfidence(BaseModel):
    """How likely the best-ranked answer really beats the runner-up, given the engine's validation error."""

    quantity: str = Field(description="What is ranked (lower is better), e.g. iteration time.")
    best: float
    runner_up: float
    unit: str = ""
    margin: float = Field(description="runner_up / best - 1 by the engine.")
    log_error_sd: float = Field(description="Standard deviation of ln(engine / measured) from the group's residuals.")
    correlation: float = Field(description="Assumed correlation of the two answers' errors.")
    probability: float = Field(description="P(the best really is faster) under `correlation`.")
    probability_independent: float = Field(description="The same with independent errors (correlation 0).")
    group: str
    note: str = ""


class Metric(BaseModel):
    key: str
    label: str
    value: float | bool | None = Field(description="A number in `unit`, a bool for yes/no metrics, None if undefined.")
    value_type: Literal["number", "boolean"] = "number"
    unit: str
    display: Literal["number", "percent"] = Field(
        "number", description='"percent": the value is a fraction, shown x100 with "%" (the value stays the fraction).'
    )
    formula: str = Field("", description="How the value is computed, with the symbols of `terms`.")
    terms: dict[str, float | str] = Field(default_factory=dict, description="The inputs the formula took.")
    band: MetricBand | None = Field(
        None, description="Where the measured value likely lies, from the engine's validation residuals."
    )
    codes: dict[int, str] = Field(
        default_factory=dict,
        description="A bit-mask metric: each bit's meaning in words (shown instead of the number).",
    )


class Column(BaseModel):
    key: str
    label: str
    unit: str = ""


class Table(BaseModel):
    key: str
    title: str
    columns: list[Column]
    rows: list[list[float | int | str | bool | None]]


#: Plotly renders a few HTML-like tags in chart text; a link (`<a href>`) or a styled span taken from a
#: user-controlled name (an inline spec's id, a scenario name) must not become markup. Every `<` that does
#: not open one of the formatting tags the charts use is escaped, so such text shows as written.
_CHART_TAGS = re.compile(r"<(?!/?(?:br|b|i|em|sup|sub|extra)\s*/?>)", re.IGNORECASE)


def _plain_chart_text(node: Any) -> Any:
    if isinstance(node, str):
        return _CHART_TAGS.sub("&lt;", node) if "<" in node else node
    if isinstance(node, dict):  # a number or a text without `<` is kept without a call
        return {
            key: value
            if type(value) in _PLAIN_SCALARS or (type(value) is str and "<" not in value)
            else _plain_chart_text(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        types = set(map(type, node))  # checked at C speed
        if _PLAIN_SCALARS.issuperset(types):  # a chart's x or y: no text in it
            return node.copy()
        if _SCALARS_AND_TEXT.issuperset(types):  # hover texts, labels, rows of numbers and labels: no call each
            return [_CHART_TAGS.sub("&lt;", value) if type(value) is str and "<" in value else value for value in node]
        return [_plain_chart_text(value) for value in node]
    return node


_PLAIN_SCALARS = frozenset({float, int, bool, type(None)})
_SCALARS_AND_TEXT = _PLAIN_SCALARS | {str}


class Chart(BaseModel):
    key: str
    title: str
    figure: dict[str, Any] = Field(description="A Plotly figure (data + layout) as JSON; its text carries no links.")

    @field_validator("figure")
    @classmethod
    def _no_markup_from_names(cls, figure: dict[str, Any]) -> dict[str, Any]:
        plain: dict[str, Any] = _plain_chart_text(figure)
        return plain


def _two_digits(value: float) -> str:
    return f"{float(f'{value:.2g}'):g}"


def _near_one(ratio: float) -> str:
    """A ratio bound to two significant digits of its distance from 1: 0.997008 reads 0.997, 2.0 reads 2."""
    return f"{1 + float(_two_digits(ratio - 1)):g}"


class Tolerance(BaseModel):
    """How close the engine must come to a published figure.

    Either a relative bound (|engine / published - 1| <= relative; 0 for exact formulas, which are
    compared to float rounding) or a band on engine / published (one-sided claims such as
    "faster, within 2x").
    """

    relative: float | None = Field(None, ge=0)
    ratio_low: float | None = None
    ratio_high: float | None = None

    @classmethod
    def within(cls, relative: float) -> Tolerance:
        return cls(relative=relative)

    @classmethod
    def band(cls, low: float, high: float) -> Tolerance:
        return cls(ratio_low=low, ratio_high=high)

    @property
    def label(self) -> str:
        """The bound as people read it: a tolerance derived from a printed figure's rounding (0.0147449%,
        0.997008 ≤ ratio) is written to two significant digits of its distance from exact (0.015%, 0.997);
        the check itself (`holds`) uses the bound as is."""
        if self.relative is None:
            low = "" if self.ratio_low is None else f"{_near_one(self.ratio_low)} ≤ "
            high = "" if self.ratio_high is None else f" ≤ {_near_one(self.ratio_high)}"
            return f"{low}engine/published{high}"
        if self.relative <= 1e-6:
            return "exact (float rounding)"
        percent = self.relative * 100
        return f"±{percent:g}%" if percent >= 1 else f"±{_two_digits(percent)}%"

    def holds(self, engine: float, published: float) -> bool | None:
        if published == 0:
            return None
        ratio = engine / published
        if self.relative is None:
            low = -math.inf if self.ratio_low is None else self.ratio_low
            high = math.inf if self.ratio_high is None else self.ratio_high
            return low <= ratio <= high
        return abs(ratio - 1) <= max(self.relative, 1e-9)


class PublishedComparison(BaseModel):
    """A published figure beside the engine's number for it."""

    quantity: str
    published: float | None = Field(description="The published number, in `unit`; None when only `published_text`.")
    published_text: str = Field("", description="The published figure as stated, when it is not one number.")
    engine: float | None = None
    unit: str = ""
    tolerance: Tolerance | None = None
    tolerance_label: str = ""
    relative_error: float | None = Field(None, description="engine / published - 1.")
    within_tolerance: bool | None = None
    source: str = Field(description="The original source: paper and table, repository and file, or datasheet.")
    note: str = ""
    #: "validation": a check of the engine; "context": a published setting beside this scenario's own input.
    role: Literal["validation", "context"] = "validation"

    @classmethod
    def of(
        cls,
        *,
        quantity: str,
        published: float | None,
        engine: float | None,
        source: str,
        unit: str = "",
        tolerance: Tolerance | None = None,
        published_text: str = "",
        note: str = "",
        role: Literal["validation", "context"] = "validation",
    ) -> PublishedComparison:
        """A comparison with its error and verdict worked out."""
        finite = engine is not None and math.isfinite(engine)
        error = engine / published - 1 if finite and published not in (None, 0) else None  # type: ignore[operator]
        within = (
            tolerance.holds(engine, published)  # type: ignore[arg-type]
            if tolerance is not None and finite and published is not None
            else None
        )
        return cls(
            quantity=quantity,
            published=published,
            published_text=published_text,
            engine=engine if finite else None,
            unit=unit,
            tolerance=tolerance,
            tolerance_label=tolerance.label if tolerance is not None else "",
            relative_error=error,
            within_tolerance=within,
            source=source,
            note=note,
            role=role,
        )


class ScenarioLink(BaseModel):
    """Another scenario worth opening from this one (e.g. a plan of the search as a training scenario)."""

    label: str
    document: dict[str, Any] = Field(description="A complete document ({schema_version, kind, name, inputs}).")
    note: str = ""


class DeferredStudy(BaseModel):
    """A study a quick answer left out: ask for it with `POST /api/v1/evaluate?include=<key>`."""

    key: str
    title: str


class EvaluationResult(BaseModel):
    kind: str
    engine_version: str
    feasible: bool = True
    metrics: list[Metric]
    tables: list[Table] = Field(default_factory=list)
    charts: list[Chart] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    #: Published figures this scenario can be compared with, each with its source.
    published: list[PublishedComparison] = Field(default_factory=list)
    links: list[ScenarioLink] = Field(default_factory=list)
    #: Whether this scenario's accelerator and dtype were ever validated (set with the metric bands).
    validation_scope: ValidationScope | None = None
    #: For a search: how likely the best answer beats the runner-up.
    ranking: RankingConfidence | None = None
    #: Studies left out of this answer (computed only when asked for); empty in a full answer.
    deferred: list[DeferredStudy] = Field(default_factory=list)


@dataclass(frozen=True)
class PublishedFigure:
    """One published number and how the engine computes the same quantity.

    The one record of a published figure: the tests parametrise over these records and the
    Validation page shows them, so the two cannot drift. `known_miss` (the reason) marks a figure
    the engine does not reproduce within `tolerance`; its test is a strict xfail.
    """

    key: str
    quantity: str
    published: float
    unit: str
    source: str
    tolerance: Tolerance
    engine: Callable[[Catalog], float]
    known_miss: str | None = None
    note: str = ""
    #: The group the figure validates. Empty: derived (the accelerator presets the engine reads while
    #: computing the figure; the kind's `validation_dtype`).
    accelerator: str = ""
    dtype: str = ""
    #: What kind of number it is, for the metric bands: "time", "rate" (work per second, or a share of a
    #: peak rate), "ratio", "other". None: from the unit (dse.services.bands.figure_measure).
    measure: Literal["time", "rate", "ratio", "other"] | None = None
    #: Accelerators the measured run used (its scale), where the source states it.
    devices: float | None = None
    #: How the figure relates to the calibration: "prediction" (out of sample), "in-sample" (its data is in a
    #: fit the engine uses: the error is a fit residual, optimistic for other settings) or "calibration" (the
    #: point a constant was set from: matches by construction, so it is no evidence of accuracy).
    fit: Literal["prediction", "in-sample", "calibration"] = "prediction"

    def compare(self, catalog: Catalog) -> PublishedComparison:
        return PublishedComparison.of(
            quantity=self.quantity,
            published=self.published,
            engine=float(self.engine(catalog)),
            source=self.source,
            unit=self.unit,
            tolerance=self.tolerance,
            note=self.known_miss or self.note,
        )
