"""Scenario kind "plan_search" end to end: examples, tables and figures, training documents that
reproduce each top plan exactly, sweeps, invalid inputs naming their field."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.plan_search.search import GRID_OUTPUTS
from dse.engines.plan_search.space import enumerate_layouts, grid_plans, inner_axes
from dse.engines.training import ClusterArrays, ModelArrays, evaluate_plans
from dse.scenarios.base import InputError
from dse.scenarios.registry import KINDS
from dse.scenarios.shared.megatron import published_plan
from dse.scenarios.sweep import SweepAxis, run_sweep

KIND = KINDS["plan_search"]
TRAINING = KINDS["training"]
CATALOG = default_catalog()
EXAMPLES = KIND.examples()
# the small heterogeneous example: fast enough for every test
RACKS = next(e for e in EXAMPLES if e["inputs"]["model"] == "gpt3-30b")["inputs"]


def resolve(inputs, kind=KIND):
    return kind.resolve(kind.inputs_model.model_validate(inputs), CATALOG)


@pytest.fixture(scope="module")
def racks_result():
    return KIND.evaluate(resolve(RACKS))


def test_examples_validate_and_the_default_is_gpt3_on_1024_gpus():
    for example in EXAMPLES:
        assert example["kind"] == "plan_search" and example["schema_version"] == 1
        resolve(example["inputs"])
    default = resolve(EXAMPLES[0]["inputs"])
    assert default.cluster.gpus == 1024 and default.model.id == "gpt3-175b"


def test_evaluation_lists_top_plans_refusals_pareto_and_figures(racks_result):
    result = racks_result
    values = {m.key: m.value for m in result.metrics}
    assert result.feasible
    for key in ("best_iteration_time_s", "best_tokens_per_s", "best_model_flops_utilization", "candidates"):
        assert values[key] is not None and math.isfinite(values[key]) and values[key] > 0
    tables = {t.key: t for t in result.tables}
    top = tables["top_plans"]
    # The 10 listed plans, near-identical ones folded into the first of them (their ranks named).
    folded = [row[-1] for row in top.rows]
    assert len(top.rows) + sum(len(f.split(", ")) for f in folded if f) == 10
    assert top.columns[-1].key == "near_identical_ranks"
    times = [row[[c.key for c in top.columns].index("iteration_time_s")] for row in top.rows]
    assert times == sorted(times) and times[0] == pytest.approx(values["best_iteration_time_s"])
    refusals = tables["refusals"]
    first = sum(row[4] for row in refusals.rows)
    assert first == values["candidates"] - values["fitting_plans"]
    figures = {f.key: f.figure for f in result.charts}
    scatter = next(trace for trace in figures["pareto"]["data"] if trace["name"] == "Pareto front")
    assert len(scatter["x"]) == values["pareto_plans"] and all("dp" in text for text in scatter["text"])
    assert set(figures) >= {"pareto", "top_breakdown", "refusals"}
    json.dumps(result.model_dump())  # the API answers JSON


def test_each_top_plan_opens_as_a_training_scenario_with_the_same_time(racks_result):
    """The document a top plan offers is a valid "training" scenario; evaluating it reproduces the
    search's iteration time exactly (same engine, node mapping carried in the permuted matrix)."""
    links = racks_result.links
    assert [link.label for link in links] == [f"Open plan #{i} as a training scenario" for i in range(1, 11)]
    top = next(t for t in racks_result.tables if t.key == "top_plans")
    column = [c.key for c in top.columns].index("iteration_time_s")
    rank = [c.key for c in top.columns].index("rank")
    for row in top.rows[:4]:
        link = links[row[rank] - 1]
        document = link.document
        assert document["kind"] == "training" and document["schema_version"] == 1
        training = TRAINING.evaluate_quick(resolve(document["inputs"], TRAINING))  # the metrics, no studies
        time = next(m.value for m in training.metrics if m.key == "iteration_time_s")
        assert time == pytest.approx(row[column], rel=1e-12)


def test_published_reference_on_a_narayanan_row():
    """Narayanan et al. SC'21 Table 1 (18.4B on 256 A100s): the published plan fits and the best found
    is at least as fast by the engine (see tests/engines/test_plan_search_validation.py for every row)."""
    resolved = resolve(next(e for e in EXAMPLES if e["inputs"]["model"] == "megatron-gpt-18.4b")["inputs"])
    result = KIND.evaluate(resolved)
    throughput, best, *utilization = result.published
    assert "Narayanan" in throughput.source and throughput.role == "validation" and throughput.within_tolerance
    assert best.role == "context" and "fits" in throughput.note
    # beside it, what whole A100 training steps reached (llm-foundry's MFU and HFU): context, not a check
    assert [p.published for p in utilization] == [0.6423, 0.5957, 0.7930, 0.7374]
    assert all(p.role == "context" and "llm-foundry" in p.source for p in utilization)
    mfu = next(m.value for m in result.metrics if m.key == "best_model_flops_utilization")
    assert utilization[0].engine == mfu and utilization[2].engine > mfu  # HFU counts the recomputation too
    # docs/plan_search.md quotes this plan's MFU and executed rate by hand: they must be the engine's
    limitations = (Path(__file__).parents[2] / "docs" / "plan_search.md").read_text()
    assert f"reaches ~{mfu * 100:.0f}% MFU" in limitations
    assert f"at {utilization[2].engine * 100:.1f}% of\n  peak in executed FLOP/s" in limitations
    published = evaluate_plans(
        model=ModelArrays.from_llm(resolved.model),
        cluster=ClusterArrays.from_spec(resolved.cluster, dtype=resolved.dtype),
        plan=published_plan(resolved.model.id),
    )
    assert bool(published.fits) and "does not fit" not in throughput.note
    assert best.engine <= float(published.iteration_time_s)


def test_sweep_over_the_global_batch_runs_one_search_per_point():
    inputs = KIND.inputs_model.model_validate(RACKS)
    result = run_sweep(KIND, inputs, CATALOG, [SweepAxis(path="global_batch_size", values=[256, 512])])
    times = result.metrics["best_iteration_time_s"]
    assert all(t is not None and t > 0 for t in times) and times[0] < times[1]
    with pytest.raises(InputError) as error:
        run_sweep(KIND, inputs, CATALOG, [SweepAxis(path="global_batch_size", values=list(range(256, 266)))])
    assert error.value.field == "axes"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": "no-such-model"}, "model"),
        ({"space": {"node_counts": [99]}}, "space.node_counts"),
        ({"cluster": {"nodes": 3, "node_pair_bandwidth_gb_per_s": [[1.0]]}}, "cluster.node_pair_bandwidth_gb_per_s"),
        ({"cluster": {"accelerator": "no-such-gpu"}}, "cluster.accelerator"),
    ],
)
def test_invalid_inputs_name_their_field(change, field):
    inputs = {**RACKS, **change}
    with pytest.raises(InputError) as error:
        resolve(inputs)
    assert error.value.field == field


def test_schema_refuses_unknown_choices():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        KIND.inputs_model.model_validate({**RACKS, "space": {"recompute": ["sometimes"]}})
    with pytest.raises(ValidationError):
        KIND.inputs_model.model_validate({**RACKS, "top_k": 0})
    with pytest.raises(ValidationError):  # ZeRO stages are 0..3 (a schema bound)
        KIND.inputs_model.model_validate({**RACKS, "space": {"zero_stages": [4]}})


def test_search_endpoint_through_the_http_api(client):
    """POST /api/v1/evaluate with a plan_search document: top plans, refusals, Pareto figure, and the
    training documents; a bad field is a 422 problem+json naming it."""
    document = {"schema_version": 1, "kind": "plan_search", "name": "racks", "inputs": RACKS}
    response = client.post("/api/v1/evaluate", json=document)
    assert response.status_code == 200
    body = response.json()
    assert {t["key"] for t in body["tables"]} >= {"top_plans", "refusals", "pareto"}
    assert any(link["document"]["kind"] == "training" for link in body["links"])
    bad = {**document, "inputs": {**RACKS, "space": {"node_counts": [99]}}}
    response = client.post("/api/v1/evaluate", json=bad)
    assert response.status_code == 422
    assert "node_counts" in response.json()["errors"][0]["field"]


def test_no_plan_fits_is_an_answer_not_an_error():
    """GPT 1T (1,008B parameters, 16 bytes each with Adam) cannot fit 8 GPUs of 80 GB: every candidate
    is refused, the best-plan metrics are empty and the refusals say why."""
    result = KIND.evaluate(resolve({"model": "megatron-gpt-1t", "cluster": {"nodes": 1}, "global_batch_size": 8}))
    values = {m.key: m.value for m in result.metrics}
    assert not result.feasible and values["best_iteration_time_s"] is None and values["fitting_plans"] == 0
    refusals = {row[2]: row[3] for row in next(t for t in result.tables if t.key == "refusals").rows}
    assert refusals["OUT_OF_MEMORY"] == values["valid_plans"] > 0


def test_quick_effort_is_a_labelled_subset_of_the_full_search():
    """search_effort "quick" judges a subset of the full grid (powers-of-two micro-batches and chunks,
    the largest cluster size only, FlashAttention only, no GPipe), so on a uniform cluster (one node
    order, no mapping climb) its best plan can be no faster than the full search's; it says so in its
    notes. On the Megatron GPT 18.4B Table 1 setting it finds the same best plan (exact equality:
    the best plan, micro-batch 1 with FlashAttention on all 32 nodes, is in the subset)."""
    setting = next(e for e in EXAMPLES if e["inputs"]["model"] == "megatron-gpt-18.4b")["inputs"]
    full = KIND.evaluate(resolve(setting))
    quick = KIND.evaluate(resolve({**setting, "search_effort": "quick"}))
    f = {m.key: m.value for m in full.metrics}
    q = {m.key: m.value for m in quick.metrics}
    assert q["candidates"] < f["candidates"] and q["fitting_plans"] <= f["fitting_plans"]
    assert q["best_iteration_time_s"] == f["best_iteration_time_s"]
    assert quick.notes[0].startswith("Quick search") and not any(n.startswith("Quick") for n in full.notes)
    # a whole-cluster-only subset: every listed plan uses all 32 nodes
    top = next(t for t in quick.tables if t.key == "top_plans")
    assert {row[2] for row in top.rows} == {32}
    # the default stays the full search, so saved documents keep their numbers
    assert resolve(setting).search_effort == "full"


def test_quick_effort_never_beats_the_full_search_on_a_uniform_cluster():
    """Subset of the grid, same engine: best(quick) >= best(full) (exact, not a tolerance)."""
    setting = {**RACKS, "cluster": {k: v for k, v in RACKS["cluster"].items() if k != "node_pair_bandwidth_gb_per_s"}}
    setting["global_batch_size"] = 96  # divisors 1,2,3,4,6,8,... : quick keeps only 1,2,4,8,16,32
    best = {}
    for effort in ("full", "quick"):
        result = KIND.evaluate(resolve({**setting, "search_effort": effort}))
        best[effort] = next(m.value for m in result.metrics if m.key == "best_iteration_time_s")
    assert best["quick"] >= best["full"]


def test_grid_calls_keep_only_time_and_memory_and_they_match_a_full_evaluation():
    """The search's grid calls write back only iteration time and memory (evaluate_plans(outputs=...)):
    those equal the full evaluation exactly (same arrays, NaN where invalid), the validity and fit bits
    too, and the metrics left out come back as NaN placeholders."""
    r = resolve(RACKS)
    model = ModelArrays.from_llm(r.model)
    cluster = ClusterArrays.from_spec(r.cluster, dtype=r.dtype)
    layouts = enumerate_layouts(space=r.space, nodes=4, gpus_per_node=8, sequence_parallel=r.space.sequence_parallel)
    inner = inner_axes(space=r.space, global_batch_size=512, num_layers=r.model.num_layers, has_ssd=False)
    plan = grid_plans(layouts=layouts, inner=inner, global_batch_size=512, sequence_length=2048, overlap=True)
    nodes = layouts.nodes.reshape(-1, *([1] * len(inner.shape)))
    cluster = dataclasses.replace(cluster, nodes=nodes)
    full = evaluate_plans(model=model, cluster=cluster, plan=plan)
    kept = evaluate_plans(model=model, cluster=cluster, plan=plan, outputs=GRID_OUTPUTS)
    assert not full.valid.all() and full.valid.any()  # the write-back path is the one exercised
    for key in (*GRID_OUTPUTS, "reasons", "valid", "fits"):
        np.testing.assert_array_equal(getattr(kept, key), getattr(full, key))
    assert np.isnan(kept.tokens_per_s).all() and not np.isnan(full.tokens_per_s).all()


def test_why_table_explains_the_top_plan_by_its_neighbours():
    """The default example (GPT-3 175B on 1,024 A100s) lists its top plan (a PTD-P plan) beside one-change
    neighbours and the best plan of the other family, ZeRO-3 (FSDP): slower by the fp32 reduce-scatters its
    backward cannot hide, which the table names; every neighbour that runs and fits is no faster, and published
    175B runs on about a thousand A100s stand beside it as context."""
    from dse.catalog.loader import default_catalog
    from dse.scenarios.documents import evaluate_document, parse_document
    from dse.scenarios.kinds.plan_search.examples import EXAMPLES

    result = evaluate_document(parse_document(EXAMPLES[0]), default_catalog())
    table = next(t for t in result.tables if t.key == "why_top_plan")
    keys = [c.key for c in table.columns]
    rows = [dict(zip(keys, row, strict=True)) for row in table.rows]
    assert rows[0]["change"] == "(the top plan)" and rows[0]["slower_pct"] == 0.0
    assert rows[0]["plan"].startswith("dp ") and "ZeRO-1" in rows[0]["plan"]
    zero3 = next(r for r in rows if r["change"].startswith("the fastest ZeRO-3 plan (runtime fsdp)"))
    assert zero3["runs"] and zero3["slower_pct"] > 0.0 and zero3["why"].startswith("ZeRO-3 gathers +")
    for row in rows[1:]:
        if row["runs"] and "outside the searched space" not in row["change"]:
            assert row["slower_pct"] >= -1e-9, row  # the search found the fastest plan that fits
        else:
            assert row["why"]  # a reason it cannot run or fit
    assert any(note.startswith("Why the top plan wins") for note in result.notes)
    context = [p for p in result.published if p.role == "context" and "175B run" in p.quantity]
    assert {p.published for p in context} == {147.0, 149.0, 141.0}
    megascale = [p for p in result.published if p.role == "context" and p.quantity.startswith("MFU, ")]
    assert {p.published for p in megascale} == {0.499, 0.635, 0.447, 0.590}
    best = next(m.value for m in result.metrics if m.key == "best_model_flops_utilization")
    assert all(p.engine == best for p in megascale)


def test_with_the_2021_deepspeed_runtime_zero3_loses_to_ptdp():
    """GPT-3 175B on 1,024 A100s: with ZeRO-3 as DeepSpeed ran it in 2021 (per-tensor list all-gathers, no
    prefetch) the fastest plan is a PTD-P plan with the distributed optimizer (ZeRO-1 and a pipeline), as
    Narayanan et al. found (Table 2); the plan opens as a training scenario with the same runtime."""
    import copy

    from dse.catalog.loader import default_catalog
    from dse.scenarios.documents import evaluate_document, parse_document
    from dse.scenarios.kinds.plan_search.examples import EXAMPLES

    doc = copy.deepcopy(EXAMPLES[0])
    doc["inputs"]["space"] = {"zero3_runtime": "deepspeed-2021"}
    doc["inputs"]["search_effort"] = "quick"
    result = evaluate_document(parse_document(doc), default_catalog())
    top = next(t for t in result.tables if t.key == "top_plans")
    first = dict(zip([c.key for c in top.columns], top.rows[0], strict=False))
    assert first["zero_stage"] <= 1 and first["pipeline_parallel"] > 1
    assert result.links[0].document["inputs"]["zero3_runtime"] == "deepspeed-2021"


def test_the_search_charts_written_as_dicts_are_what_plotly_would_make():
    """The Pareto, breakdown and refusal charts are written as plain dicts (they are in every quick answer):
    plotly's own validator takes each and gives back exactly the same figure."""
    import plotly.graph_objects as go

    from dse.scenarios.kinds.plan_search.charts import pareto_chart, refusals_chart, top_plans_breakdown_chart

    pareto = pareto_chart(
        time_s=[1.5, 2.25],
        memory_bytes=[2.0**30, 3.0 * 2**31],
        gpus=[8, 16],
        hover=["a", "b"],
        top_time_s=[1.5],
        top_memory_bytes=[2.0**30],
        top_hover=["a"],
        capacity_bytes=80.0 * 2**30,
        cloud_time_s=[3.0],
        cloud_memory_bytes=[2.0**33],
        cloud_gpus=[4],
    )
    breakdown = top_plans_breakdown_chart(["#1", "#2"], [("compute", [1.0, 2.0]), ("pipeline bubble", [0.5, 0.25])])
    refusals = refusals_chart(["out of memory", "tp > heads"], [1000, 3])
    for figure in (pareto, breakdown, refusals):
        assert go.Figure(figure).to_plotly_json() == figure
    assert pareto["layout"]["shapes"][0]["y0"] == 80.0 and pareto["layout"]["annotations"][0]["text"] == "GPU memory"
    assert [trace["x"] for trace in breakdown["data"]] == [[1.0, 2.0], [0.5, 0.25]]
    # A part no top plan spends time on (a dense model's EP all-to-alls) gets no bar and no legend entry.
    dense = top_plans_breakdown_chart(["#1", "#2"], [("compute", [1.0, 2.0]), ("EP all-to-all", [0.0, 0.0])])
    assert [trace["name"] for trace in dense["data"]] == ["compute"]
    assert refusals["data"][0]["x"] == [1000, 3] and refusals["layout"]["xaxis"]["type"] == "log"


def test_the_refusals_chart_stays_short_with_every_reason_on_hover():
    """Every reason there is, refused at once: each label at most two lines (one when there are many), the
    whole sentence on hover, and the chart no taller than its cap (it sat between charts at ~1,000 px)."""
    from dse.engines.training.validity import OUT_OF_MEMORY, REASONS
    from dse.scenarios.kinds.plan_search.charts import REFUSALS_MAX_HEIGHT_PX, refusals_chart

    messages = [r.message for r in (*REASONS.values(), OUT_OF_MEMORY)]
    for count in (3, len(messages)):
        chart = refusals_chart(messages[:count], [10] * count)
        bars = chart["data"][0]
        assert bars["customdata"] == messages[:count]
        assert max(label.count("<br>") + 1 for label in bars["y"]) == (2 if count == 3 else 1)
        assert chart["layout"]["height"] <= REFUSALS_MAX_HEIGHT_PX <= 520
