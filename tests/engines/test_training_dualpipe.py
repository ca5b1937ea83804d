"""DualPipe (DeepSeek-V3, arXiv:2412.19437 Section 3.2.1, Table 2): bubble (K/2 - 1)(F&B + B - 3W) on a 1F1B
plan that asks for it, its validity, and plans without it unchanged."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.training import ModelArrays, PlanArrays, Schedule, describe_reasons, evaluate_plans
from dse.engines.training.schedules import dualpipe_bubble_s
from dse.scenarios.kinds.training.published_moe import _cluster

CATALOG = default_catalog()


@pytest.mark.parametrize(
    ("K", "fb", "b", "w", "expected"),
    [(16, 3.0, 2.0, 1.0, 7 * 2.0), (8, 1.0, 2.0, 0.5, 3 * 1.5), (2, 3.0, 2.0, 1.0, 0.0)],
)
def test_dualpipe_bubble_is_table_2s_formula(K, fb, b, w, expected):
    got = dualpipe_bubble_s(stages=K, forward_and_backward_s=fb, backward_s=b, weight_gradient_s=w)
    assert float(got) == pytest.approx(expected, rel=1e-15)


def plan(**changes):
    base = PlanArrays(
        global_batch_size=64.0,
        micro_batch_size=1.0,
        sequence_length=4096.0,
        data_parallel=8.0,
        tensor_parallel=1.0,
        pipeline_parallel=8.0,
        flash_attention=1.0,
    )
    return dataclasses.replace(base, **changes)


def evaluate(**changes):
    model = ModelArrays.from_llm(CATALOG.get("llms", "llama2-70b"))
    return evaluate_plans(
        model=model, cluster=_cluster(CATALOG, 8, "h100-sxm", "nvlink4", "bf16"), plan=plan(**changes)
    )


def test_dualpipe_shrinks_the_bubble_and_leaves_everything_else():
    one_f_one_b, dual = evaluate(), evaluate(dualpipe=1.0)
    assert 0.0 < float(dual.time_bubble_s) < 0.5 * float(one_f_one_b.time_bubble_s)
    for key in ("time_data_parallel_s", "memory_total_bytes", "first_stage_s", "last_stage_s"):
        assert float(getattr(dual, key)) == float(getattr(one_f_one_b, key))
    parts = [getattr(dual, k) for k in dual.as_dict() if k.startswith("time_")]
    np.testing.assert_allclose(sum(parts), dual.iteration_time_s, rtol=1e-12)


def test_a_dualpipe_rank_runs_half_its_micro_batches_as_stage_i_and_half_as_stage_p_minus_1_minus_i():
    """The first and last stages share a rank: its pace is their mean (the embedding and the logits half each),
    not the slower one's; the breakdown still adds up to the iteration."""
    one_f_one_b, dual = evaluate(), evaluate(dualpipe=1.0)
    first, last = float(dual.first_stage_s), float(dual.last_stage_s)
    assert first != last
    steady = float(dual.iteration_time_s - dual.time_bubble_s - dual.time_data_parallel_s - dual.time_optimizer_s)
    assert steady == pytest.approx(float(dual.micro_batches) * (first + last) / 2.0, rel=1e-12)
    assert float(dual.time_forward_s) < float(one_f_one_b.time_forward_s)


def test_two_stages_under_dualpipe_have_no_bubble():
    r = evaluate(dualpipe=1.0, pipeline_parallel=2.0, data_parallel=32.0)
    assert float(r.time_bubble_s) == 0.0


@pytest.mark.parametrize(
    "change",
    [
        dict(dualpipe=0.5),
        dict(dualpipe=1.0, pipeline_schedule=Schedule.INTERLEAVED, virtual_stages=2.0),
        dict(dualpipe=1.0, pipeline_schedule=Schedule.GPIPE),
        dict(dualpipe=1.0, global_batch_size=72.0, data_parallel=8.0, micro_batch_size=3.0),
    ],
)
def test_dualpipe_outside_even_1f1b_plans_names_its_reason(change):
    r = evaluate(**change)
    assert "DUALPIPE" in {x.name for x in describe_reasons(int(r.reasons))}
