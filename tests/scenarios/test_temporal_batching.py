"""Scenario kind temporal_batching end to end: examples, the PRES comparison, sweeps over the batch,
per-dataset charts, bad inputs naming their field. PRES's 3.4x and JODIE's Wikipedia statistics are
records in kinds/temporal_batching/published.py (tests/validation/test_published_figures.py)."""

from __future__ import annotations

import html
import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from dse.catalog import default_catalog
from dse.scenarios.base import InputError
from dse.scenarios.kinds.temporal_batching.published import PRES_BATCH_FACTOR, PRES_PUBLISHED_SPEEDUP
from dse.scenarios.registry import KINDS
from dse.scenarios.sweep import SweepAxis, run_sweep

KIND = KINDS["temporal_batching"]
CATALOG = default_catalog()


def _resolve(**inputs):
    return KIND.resolve(KIND.inputs_model.model_validate(inputs), CATALOG)


@pytest.mark.parametrize("example", KIND.examples(), ids=lambda e: e["name"])
def test_examples_evaluate_to_finite_metrics(example):
    result = KIND.evaluate(KIND.resolve(KIND.inputs_model.model_validate(example["inputs"]), CATALOG))
    assert {m.key for m in result.metrics} == set(KIND.metric_specs)
    assert all(m.value is not None and math.isfinite(m.value) for m in result.metrics)
    json.dumps(result.model_dump())


def test_pres_batch_and_speedup_sit_beside_the_paper():
    """PRES (ICLR'24 abstract): 4x larger temporal batch, 3.4x speed-up. The engine's speed-up of a 4x batch
    lies in (1, 4] (fixed + per-event cost); the result shows the paper's 3.4 beside it (no verdict: it hangs
    on the assumed per-batch cost) and the paper's 4x beside the scenario's own factor (context)."""
    result = KIND.evaluate(_resolve())
    values = {m.key: m.value for m in result.metrics}
    assert values["pres_batch_events"] == 800
    assert 1.0 < values["pres_speedup"] <= 4.0
    assert values["pres_discontinuity_rate"] > values["baseline_discontinuity_rate"]
    speedup, factor = result.published
    assert speedup.published == PRES_PUBLISHED_SPEEDUP and speedup.engine == values["pres_speedup"]
    assert speedup.role == "validation" and speedup.within_tolerance is None and "PRES" in speedup.source
    assert factor.role == "context" and factor.published == PRES_BATCH_FACTOR and factor.engine == 4.0


def test_sweep_over_the_temporal_batch():
    """One call over 60 batch sizes: throughput and discontinuity both rise with the batch."""
    inputs = KIND.inputs_model.model_validate({"dataset": "reddit"})
    batches = np.unique(np.round(np.geomspace(10, 50_000, 60))).tolist()
    sweep = run_sweep(KIND, inputs, CATALOG, [SweepAxis(path="temporal_batch_events", values=batches)])
    rate, dis = np.array(sweep.metrics["events_per_s"]), np.array(sweep.metrics["discontinuity_rate"])
    assert np.all(np.diff(rate) > 0) and np.all(np.diff(dis) > 0)


def test_degree_law_is_not_sweepable():
    """The exponent and the node counts shape the node classes: a sweep over them is refused, naming the axes."""
    inputs = KIND.inputs_model.model_validate({})
    for path in ("dataset.source_side.exponent", "dataset.destination_side.nodes", "memory_dim"):
        with pytest.raises(InputError) as err:
            run_sweep(
                KIND, inputs, CATALOG, [SweepAxis(path=path, values=[0.5, 1.0] if "exponent" in path else [50, 100])]
            )
        assert err.value.field == "axes", path


def test_each_side_keeps_its_own_exponent_unless_overridden():
    """A flatter item side lowers the rate; the override applies one exponent to both sides."""
    wikipedia = json.loads((CATALOG.root / "graph_datasets" / "wikipedia.json").read_text())
    flat_items = {**wikipedia, "destination_side": {**wikipedia["destination_side"], "exponent": 0.0}}
    both_075 = {**wikipedia, **{k: {**wikipedia[k], "exponent": 0.75} for k in ("source_side", "destination_side")}}
    rate = {}
    for name, doc in (
        ("preset", {}),
        ("flat", {"dataset": flat_items}),
        ("both_075", {"dataset": both_075}),
        ("override", {"dataset": flat_items, "zipf_exponent": 0.75}),
    ):
        result = KIND.evaluate(_resolve(**doc))
        rate[name] = next(m.value for m in result.metrics if m.key == "discontinuity_rate")
    assert rate["flat"] < rate["preset"]
    assert rate["override"] == pytest.approx(rate["both_075"], rel=1e-12)


def test_figures_have_one_line_per_dataset():
    """Names show as written: a '<' in a name ("actors <-> actors") is escaped so Plotly does not read a tag."""
    result = KIND.evaluate(_resolve())
    figures = {f.key: f.figure for f in result.charts}
    names = {d.name for d in CATALOG.items("graph_datasets")}
    for key in ("throughput_vs_batch", "discontinuity_vs_batch"):
        assert {html.unescape(t["name"]) for t in figures[key]["data"]} == names


def test_accelerator_without_a_thread_count_names_the_field():
    with pytest.raises(InputError) as err:
        _resolve(accelerator="neupims-npu")
    assert err.value.field == "resident_threads"
    assert _resolve(accelerator="neupims-npu", resident_threads=65536).resident_threads == 65536


def test_unknown_dataset_and_bad_numbers_are_refused():
    with pytest.raises(InputError) as err:
        _resolve(dataset="twitter")
    assert err.value.field == "dataset"
    with pytest.raises(ValidationError):
        KIND.inputs_model.model_validate({"temporal_batch_events": 0})
    with pytest.raises(ValidationError):
        KIND.inputs_model.model_validate({"fixed_cost_per_batch_ms": float("nan")})


def test_histogram_dataset_inline():
    """A dataset given inline as degree histograms evaluates; mismatched histogram lengths name the field."""
    dataset = {
        "id": "toy",
        "name": "toy",
        "source": "test",
        "nodes": 30,
        "events": 300,
        "bipartite": True,
        "source_side": {
            "nodes": 20,
            "law": "histogram",
            "histogram_degrees": [5, 25],
            "histogram_node_counts": [15, 5],
        },
        "destination_side": {
            "nodes": 10,
            "law": "histogram",
            "histogram_degrees": [30],
            "histogram_node_counts": [10],
        },
    }
    result = KIND.evaluate(_resolve(dataset=dataset, temporal_batch_events=50))
    assert 0 < next(m.value for m in result.metrics if m.key == "discontinuity_rate") < 1
    dataset["source_side"]["histogram_node_counts"] = [15]
    with pytest.raises(InputError) as err:
        _resolve(dataset=dataset)
    assert err.value.field == "dataset.source_side"
