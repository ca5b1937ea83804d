"""Error bands from the residuals of the published figures (dse.services.bands): the computation exactly,
on tiny synthetic residual sets, then the bands and notes real evaluations carry."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.scenarios.documents import parse_document
from dse.scenarios.registry import KINDS
from dse.scenarios.shared.palette import PALETTE
from dse.scenarios.vocabulary import MetricSpec, Tolerance, ValidationScope
from dse.services import bands
from dse.services.bands import BandBasis, Residual
from dse.services.evaluation import evaluate
from dse.services.validation import ValidationRow, figure_measure

CATALOG = default_catalog()
WITHIN_10 = (0.9, 1.1)


def _row(key: str, engine: float, published: float, *, unit: str = "s", measure: str = "time", **extra):
    return ValidationRow(
        kind="k",
        key=key,
        quantity=key,
        published=published,
        engine=engine,
        unit=unit,
        relative_error=engine / published - 1,
        tolerance=extra.pop("tolerance", Tolerance.within(0.1)),
        source="synthetic",
        group="k/A100/bf16",
        measure=measure,
        **extra,
    )


def _residuals(*factors: float, allowed: tuple[float, float] = WITHIN_10, misses: int = 0) -> tuple[Residual, ...]:
    return tuple(Residual(f"r{i}", "k/A100/bf16", f, allowed, i < misses) for i, f in enumerate(factors))


def test_residuals_are_time_factors_and_leave_out_exact_formulas_and_context():
    rows = [
        _row("slow", 1.2, 1.0),  # engine 20% slow: factor 1.2
        _row("rate", 80.0, 100.0, unit="TFLOP/s", measure="rate"),  # engine rate 0.8 of published: time factor 1.25
        _row("exact", 2.0, 1.0, tolerance=Tolerance.within(0.0)),
        _row("context", 3.0, 1.0, role="context"),
        _row("memory", 1.5, 1.0, unit="GiB", measure="other"),
        _row("miss", 0.5, 1.0, known_miss="a real error"),
    ]
    residuals = bands.residuals_of(rows, frozenset({"time", "rate"}))
    assert [(r.key, r.known_miss) for r in residuals] == [("slow", False), ("rate", False), ("miss", True)]
    assert [r.factor for r in residuals] == pytest.approx([1.2, 1.25, 0.5])
    # A rate's allowed engine/published [0.9, 1.1] is a time factor in [1/1.1, 1/0.9].
    assert residuals[1].allowed == pytest.approx((1 / 1.1, 1 / 0.9))
    # A calibration point matches by construction: no evidence, left out; an in-sample figure stays, flagged.
    rows = [_row("calibration", 1.0, 1.0, fit="calibration"), _row("fit", 1.1, 1.0, fit="in-sample")]
    assert [(r.key, r.in_sample) for r in bands.residuals_of(rows, frozenset({"time"}))] == [("fit", True)]


def test_quantile_band_is_exact_on_five_residuals():
    residuals = _residuals(0.8, 0.9, 1.0, 1.1, 1.25)
    # A duration's measured value is the engine's / factor: sorted 1/f = 0.8, 1/1.1, 1, 1/0.9, 1.25 (linear quantiles).
    (p10, p50, p90), method = bands.relative_band(residuals, "time")
    assert method == "quantiles"
    assert p10 == pytest.approx(0.8 + 0.4 * (1 / 1.1 - 0.8))
    assert p50 == pytest.approx(1.0)
    assert p90 == pytest.approx(1 / 0.9 + 0.6 * (1.25 - 1 / 0.9))
    # A rate's measured value is the engine's x factor.
    assert bands.relative_band(residuals, "rate")[0] == pytest.approx((0.84, 1.0, 1.19))


def test_too_few_residuals_give_the_stated_interval():
    residuals = _residuals(1.05, 0.95)
    (low, mid, high), method = bands.relative_band(residuals, "time")
    assert method == "stated-interval"
    # The hull of 1/f and of what the tests allow (engine/published within 10%: 1/1.1 .. 1/0.9).
    assert (low, high) == pytest.approx((1 / 1.1, 1 / 0.9))
    assert mid == pytest.approx((1 / 1.05 + 1 / 0.95) / 2)
    # A residual outside its tolerance (a known miss) widens the interval beyond it.
    (low, _, high), _ = bands.relative_band(_residuals(2.0, misses=1), "rate")
    assert (low, high) == pytest.approx((0.9, 2.0))


def test_metric_band_scales_the_value_and_counts_the_known_misses():
    scope = ValidationScope(group="k/A100/bf16", validated=True)
    basis = BandBasis(scope, "k/A100/bf16", _residuals(0.8, 0.9, 1.0, 1.1, 1.25, misses=2), ())
    band = bands.metric_band(10.0, "rate", basis)
    assert band is not None
    assert (band.p10, band.p50, band.p90) == pytest.approx((8.4, 10.0, 11.9))
    assert (band.relative_p10, band.relative_p90) == pytest.approx((0.84, 1.19))
    assert band.residuals == 5 and band.known_misses == 2 and band.method == "quantiles"
    assert "known misses" in band.note and band.group == "k/A100/bf16"
    assert bands.metric_band(0.0, "rate", basis) is None
    assert bands.metric_band(1.7e308, "rate", basis) is None  # its P90 would overflow to inf
    assert bands.metric_band(10.0, "rate", BandBasis(scope, "k/A100/bf16", (), ())) is None


def test_which_metrics_get_a_band():
    assert bands.metric_band_kind(MetricSpec(label="t", unit="s")) == "time"
    assert bands.metric_band_kind(MetricSpec(label="r", unit="tokens/s")) == "rate"
    assert bands.metric_band_kind(MetricSpec(label="m", unit="bytes")) is None
    assert bands.metric_band_kind(MetricSpec(label="f", unit="", boolean=True)) is None
    assert bands.metric_band_kind(MetricSpec(label="u", unit="fraction", band="rate")) == "rate"
    assert bands.metric_band_kind(MetricSpec(label="t", unit="s", band="none")) is None


def test_figure_measure_from_the_unit_unless_the_record_says():
    def figure(unit: str, measure=None):
        from dse.scenarios.vocabulary import PublishedFigure

        return PublishedFigure("k", "q", 1.0, unit, "s", Tolerance.within(0.1), lambda _: 1.0, measure=measure)

    assert [figure_measure(figure(u)) for u in ("ms", "days", "TFLOP/s", "x", "x K = 2", "GiB")] == [
        "time",
        "time",
        "rate",
        "ratio",
        "ratio",
        "other",
    ]
    assert figure_measure(figure("fraction", "rate")) == "rate"


def test_ranking_probability_is_the_normal_cdf_of_the_log_margin():
    assert bands.ranking_probability(0.0, 0.1, 0.5) == 0.5
    # spread = 0.1 * sqrt(2 (1 - 0.5)) = 0.1
    expected = 0.5 * (1 + math.erf(math.log(1.1) / 0.1 / math.sqrt(2)))
    assert bands.ranking_probability(0.1, 0.1, 0.5) == pytest.approx(expected)
    assert bands.ranking_probability(0.1, 0.1, 1.0) == 1.0
    assert bands.ranking_probability(0.1, 0.1, 0.0) < bands.ranking_probability(0.1, 0.1, 0.9)


def _evaluate(kind: str, index: int):
    return evaluate(parse_document(KINDS[kind].examples()[index]), CATALOG)


def test_a_validated_scenario_carries_its_groups_bands():
    result = _evaluate("training", 0)  # Megatron-LM on A100s, bf16: the group the Table 1/4/5 records check
    assert result.validation_scope is not None and result.validation_scope.validated
    assert result.validation_scope.group == "training/A100/bf16"
    assert not any("Outside what was validated" in note for note in result.notes)
    time = next(m for m in result.metrics if m.key == "iteration_time_s")
    assert time.band is not None and time.band.group == "training/A100/bf16" and time.band.residuals >= 5
    assert time.band.p10 <= time.band.p50 <= time.band.p90
    assert time.band.p50 == pytest.approx(time.value * time.band.relative_p50)
    assert next(m for m in result.metrics if m.key == "memory_total_bytes").band is None


def test_a_scenario_outside_what_was_validated_says_so():
    document = copy.deepcopy(KINDS["training"].examples()[1])
    document["inputs"]["cluster"]["accelerator"] = "mi300x"  # no training figure was checked on an MI300X
    document["inputs"]["cluster"]["intra_node_link"] = "infinity-fabric-mi300x"
    result = evaluate(parse_document(document), CATALOG)
    scope = result.validation_scope
    assert scope is not None and not scope.validated and "training/A100/bf16" in scope.validated_groups
    assert any(note.startswith("Outside what was validated") for note in result.notes)
    time = next(m for m in result.metrics if m.key == "iteration_time_s")
    assert time.band is not None and time.band.group == "training/all"


def test_the_plan_search_says_how_likely_its_best_plan_beats_the_runner_up():
    result = _evaluate("plan_search", 0)
    ranking = result.ranking
    assert ranking is not None and ranking.best <= ranking.runner_up
    assert ranking.probability == pytest.approx(
        bands.ranking_probability(ranking.margin, ranking.log_error_sd, ranking.correlation)
    )
    assert 0.5 <= ranking.probability <= 1.0 and "correlated" in ranking.note
    top = next(t for t in result.tables if t.key == "top_plans")
    column = [c.key for c in top.columns].index("iteration_time_s")
    assert ranking.margin == pytest.approx(top.rows[1][column] / top.rows[0][column] - 1)


def test_a_marked_chart_series_gets_its_band():
    scope = ValidationScope(group="k/A100/bf16", validated=True)
    basis = BandBasis(scope, "k/A100/bf16", _residuals(0.8, 0.9, 1.0, 1.1, 1.25), ())
    figure = {"data": [{"type": "scatter", "x": [1, 2], "y": [10.0, 20.0], "meta": {"band": "rate"}}, {"y": [1]}]}
    bands._band_traces(figure, basis)
    low, high, main, other = figure["data"]
    assert np.allclose(low["y"], [8.4, 16.8]) and np.allclose(high["y"], [11.9, 23.8]) and high["fill"] == "tonexty"
    assert main["meta"] == {"band": "rate"} and other == {"y": [1]}


def _rgb(colour: str) -> tuple[int, ...]:
    """A colour's red, green and blue, alpha left out ("#4E79A7", "rgba(78,121,167,0.18)")."""
    if colour.startswith("#"):
        return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return tuple(int(float(c)) for c in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3])


def test_no_band_shares_the_colour_of_a_series_of_its_chart():
    """The band's legend entry stands for every band of the chart: in one series' hue (the first's, at 18%)
    it read as that series (PPO's chart)."""
    scope = ValidationScope(group="k/A100/bf16", validated=True)
    basis = BandBasis(scope, "k/A100/bf16", _residuals(0.8, 0.9, 1.0, 1.1, 1.25), ())
    series = [
        {"type": "scatter", "x": [1, 2], "y": [10.0 * n, 20.0 * n], "line": {"color": colour}, "meta": {"band": "rate"}}
        for n, colour in enumerate(PALETTE, start=1)
    ]
    figure = {"data": series}
    bands._band_traces(figure, basis)
    lines = {_rgb(t["line"]["color"]) for t in figure["data"] if t.get("name") != "P10–P90 (validation)"}
    band_traces = [t for t in figure["data"] if t.get("name") == "P10–P90 (validation)"]
    assert len(band_traces) == 2 * len(PALETTE) and len(lines) == len(PALETTE)
    for trace in band_traces:
        assert _rgb(trace["line"]["color"]) not in lines
        assert "fillcolor" not in trace or _rgb(trace["fillcolor"]) not in lines


def test_a_scenario_far_beyond_the_validated_scale_says_so():
    class Scaled:
        def __init__(self, devices):
            self.devices = devices

        def validation_scale(self, _resolved):
            return self.devices

    runs = tuple(Residual(f"r{d}", "k/A100/bf16", 1.0, WITHIN_10, False, float(d)) for d in (8, 64, 512))
    basis = BandBasis(ValidationScope(group="k/A100/bf16", validated=True), "k/A100/bf16", runs, ())
    inside = bands.scenario_scope(Scaled(1024.0), None, basis)  # within 2x the largest run
    assert inside.within_scale is True and inside.validated_devices == [8.0, 512.0] and not inside.note
    beyond = bands.scenario_scope(Scaled(1025.0), None, basis)
    assert beyond.within_scale is False and beyond.note.startswith("Outside the validated scale")
    assert bands.scenario_scope(Scaled(4.0), None, basis).within_scale is True
    assert bands.scenario_scope(Scaled(3.9), None, basis).within_scale is False
    assert bands.scenario_scope(Scaled(None), None, basis) is basis.scope
