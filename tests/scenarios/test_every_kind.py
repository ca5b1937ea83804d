"""The contract every registered kind keeps: its examples validate and evaluate to finite metrics,
every metric key is declared, and a sweep over a numeric input is one call with the grid's shape."""

from __future__ import annotations

import json
import math

import pytest

from dse.catalog import default_catalog
from dse.scenarios.documents import parse_document
from dse.scenarios.registry import KINDS
from dse.scenarios.sweep import SweepAxis, run_sweep, sweepable_paths

EXPECTED_KINDS = {"inference", "training", "plan_search", "rl_scaling", "temporal_batching", "pruning", "serving"}
EXAMPLES = [(name, doc) for name, kind in KINDS.items() for doc in kind.examples()]


def test_the_kinds_of_the_papers_are_registered():
    assert set(KINDS) >= EXPECTED_KINDS


@pytest.mark.parametrize(("kind_name", "doc"), EXAMPLES, ids=[d["name"][:50] for _, d in EXAMPLES])
def test_example_evaluates_to_finite_declared_metrics(kind_name, doc):
    kind = KINDS[kind_name]
    document = parse_document(doc)
    result = kind.evaluate(kind.resolve(document.inputs, default_catalog()))
    assert result.kind == kind_name and result.metrics
    for metric in result.metrics:
        assert metric.key in kind.metric_specs, metric.key
        assert metric.value is None or math.isfinite(metric.value)
    json.dumps(result.model_dump(mode="json"))  # serialisable as is
    # A trace coloured by an array (a colour scale) has a colour bar, not a legend entry: its swatch would
    # show one colour of the scale (plan search's Pareto front, coloured by GPUs used).
    for chart in result.charts:
        for trace in chart.figure.get("data", []):
            if isinstance((trace.get("marker") or {}).get("color"), list):
                assert trace.get("showlegend") is False, (chart.key, trace.get("name"))
    # Every series on a log axis has a point that axis can draw (a positive value); an all-zero series is named
    # in a note instead (the sequence-parallel chart's "none": nothing sent).
    for chart in result.charts:
        layout = chart.figure.get("layout", {})
        for trace in chart.figure.get("data", []):
            for letter in ("x", "y"):
                axis = layout.get(f"{letter}axis{str(trace.get(f'{letter}axis', letter))[1:]}", {})
                values = trace.get(letter)
                if axis.get("type") == "log" and isinstance(values, list) and values:
                    flat = [v for v in values if isinstance(v, int | float)]
                    assert any(v > 0 for v in flat), (chart.key, trace.get("name"), letter)


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_first_example_sweeps_in_one_call(kind_name):
    kind = KINDS[kind_name]
    document = parse_document(kind.examples()[0])
    resolved = kind.resolve(document.inputs, default_catalog())
    leaves = sweepable_paths(resolved)
    top_level = [p for p in leaves if "." not in p and p in document.inputs.model_dump() and leaves[p] > 1]
    assert top_level, "a kind must have at least one numeric input to sweep"
    path = top_level[0]
    base = leaves[path]
    values = sorted({base, base * 2}) if float(base).is_integer() else [base * 0.5, base]
    out = run_sweep(kind, document.inputs, default_catalog(), [SweepAxis(path=path, values=values)])
    assert out.shape == [len(values)]
    assert set(out.metrics) <= set(kind.metric_specs)
