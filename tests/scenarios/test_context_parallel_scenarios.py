"""Context parallelism and uneven stages through the scenario kinds: the training inputs (defaults keep old
documents), the example question, and a plan search whose space holds them, each top plan reopening as a
training scenario with the same time."""

from __future__ import annotations

import pytest

from dse.catalog import default_catalog
from dse.scenarios.base import InputError
from dse.scenarios.registry import KINDS

TRAINING = KINDS["training"]
PLAN_SEARCH = KINDS["plan_search"]
CATALOG = default_catalog()
CP_EXAMPLE = next(e for e in TRAINING.examples() if e["inputs"].get("context_parallel", 1) > 1)["inputs"]


def resolve(inputs, kind=TRAINING):
    return kind.resolve(kind.inputs_model.model_validate(inputs), CATALOG)


def metric(result, key):
    return next(m.value for m in result.metrics if m.key == key)


def test_the_llama3_question_answers_with_a_context_parallel_item_and_the_worst_stage():
    result = TRAINING.evaluate(resolve(CP_EXAMPLE))
    assert metric(result, "time_context_parallel_s") > 0
    assert metric(result, "peak_stage") == 1  # 7 / 8 / 7 layers under interleaving: the second stage holds most
    time = next(t for t in result.tables if t.key == "time")
    assert "Context-parallel K/V exchange (exposed)" in [row[0] for row in time.rows]
    timeline = next(t for t in result.tables if t.key == "timeline")
    assert "context_parallel" in {row[1] for row in timeline.rows}


def test_documents_without_the_new_inputs_keep_their_answer():
    base = {k: v for k, v in CP_EXAMPLE.items() if k not in ("context_parallel", "context_parallel_exchange")}
    base |= {"data_parallel": 128, "sequence_length_tokens": 8192, "global_batch_size": 2048}
    explicit = base | {"context_parallel": 1, "context_parallel_exchange": "p2p"}
    a, b = TRAINING.compute(resolve(base)), TRAINING.compute(resolve(explicit))
    assert float(a["iteration_time_s"]) == float(b["iteration_time_s"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"context_parallel": 32}, "data_parallel"),  # 8 x 8 x 16 x 32 != 16,384 GPUs
        ({"context_parallel": 16, "sequence_length_tokens": 131080}, "context_parallel"),
        (
            {"first_stage_layers": 8, "last_stage_layers": 8, "pipeline_schedule": "1f1b", "virtual_stages": 1},
            "first_stage_layers",
        ),
    ],
)
def test_impossible_plans_name_their_field(change, field):
    with pytest.raises(InputError) as error:
        resolve(CP_EXAMPLE | change)
    assert error.value.field == field


def test_a_plan_search_with_context_parallelism_reopens_its_plans_exactly():
    inputs = {
        "model": "llama2-70b",
        "cluster": {"accelerator": "h100-sxm", "intra_node_link": "nvlink4", "inter_node_link": "ib-ndr", "nodes": 8},
        "global_batch_size": 16,
        "sequence_length_tokens": 65536,
        "top_k": 3,
        "search_effort": "quick",
        "space": {"context_parallel": ["p2p", "all-gather"], "uneven_stages": True, "flash_attention": [True]},
    }
    result = PLAN_SEARCH.evaluate(resolve(inputs, PLAN_SEARCH))
    top = next(t for t in result.tables if t.key == "top_plans")
    keys = [c.key for c in top.columns]
    assert {"context_parallel", "context_parallel_exchange", "first_stage_layers"} <= set(keys)
    for row in top.rows:  # the table merges near-identical plans: each row names its rank (its link)
        training = TRAINING.evaluate(resolve(result.links[row[keys.index("rank")] - 1].document["inputs"]))
        assert metric(training, "iteration_time_s") == pytest.approx(row[keys.index("iteration_time_s")], rel=1e-12)
        assert metric(training, "time_context_parallel_s") == pytest.approx(
            row[keys.index("time_context_parallel_s")], rel=1e-12
        )
    assert any(row[keys.index("context_parallel")] > 1 for row in top.rows)
    if top.rows[0][keys.index("context_parallel")] > 1:  # the top plan's neighbours include dropping CP
        why = next(t for t in result.tables if t.key == "why_top_plan")
        assert any(str(row[0]).startswith("no context parallelism") for row in why.rows)
