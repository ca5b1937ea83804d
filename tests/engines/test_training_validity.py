"""Invalid plans are refused with a reason code naming the field; the engine broadcasts over plans."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.training import (
    OUT_OF_MEMORY,
    REASONS,
    ClusterArrays,
    ModelArrays,
    PlanArrays,
    Schedule,
    SequenceParallel,
    describe_reasons,
    evaluate_plans,
)
from dse.engines.training.links import group_link
from dse.specs.network import ClusterSpec

CATALOG = default_catalog()
MODEL = ModelArrays.from_llm(CATALOG.get("llms", "gpt3-7b"))  # 32 heads, 32 layers
SPEC = ClusterSpec(
    nodes=2,
    gpus_per_node=8,
    accelerator=CATALOG.get("accelerators", "a100-80gb"),
    intra_node_link=CATALOG.get("interconnects", "nvlink3"),
    inter_node_link=CATALOG.get("interconnects", "ib-hdr"),
    inter_node_links_per_node=8,
)
CLUSTER = ClusterArrays.from_spec(SPEC)
GOOD = PlanArrays(
    global_batch_size=64.0,
    micro_batch_size=2.0,
    sequence_length=2048.0,
    data_parallel=4.0,
    tensor_parallel=2.0,
    pipeline_parallel=2.0,
    zero_stage=1.0,
    recompute=1.0,
)

INVALID = {
    "GPU_COUNT": dict(data_parallel=2.0),
    "TP_HEADS": dict(tensor_parallel=3.0, data_parallel=1.0, pipeline_parallel=1.0, global_batch_size=6.0),
    "BATCH": dict(micro_batch_size=3.0),
    "LAYERS": dict(
        pipeline_parallel=16.0, data_parallel=1.0, tensor_parallel=1.0, global_batch_size=2.0, micro_batch_size=1.0
    )
    | dict(pipeline_parallel=6.0),
    "SP_DEGREE_KIND": dict(sequence_parallel_degree=2.0, data_parallel=2.0),
    # 32 heads: with t = 2 a rank has 16, so 32 Ulysses ranks are too many (other reasons may show too).
    "ULYSSES_ABOVE_HEADS": dict(sequence_parallel=float(SequenceParallel.ULYSSES), sequence_parallel_degree=32.0),
    # 16 heads per rank cannot be spread evenly over 3 Ulysses ranks.
    "ULYSSES_HEADS": dict(sequence_parallel=float(SequenceParallel.ULYSSES), sequence_parallel_degree=3.0),
    "VIRTUAL_STAGES": dict(virtual_stages=2.0),
    "INTERLEAVED": dict(pipeline_schedule=float(Schedule.INTERLEAVED), virtual_stages=2.0, global_batch_size=8.0 * 3),
    "ZERO_WITH_PIPELINE": dict(zero_stage=2.0),
    "OFFLOAD_WITHOUT_SSD": dict(activation_offload=1.0),
    "SEQUENCE_SPLIT": dict(sequence_parallel=float(SequenceParallel.MEGATRON), sequence_length=2047.0),
}


def test_good_plan_is_valid_and_fits():
    result = evaluate_plans(model=MODEL, cluster=CLUSTER, plan=GOOD)
    assert result.reasons == 0 and result.valid and result.fits
    assert np.isfinite(result.iteration_time_s)


@pytest.mark.parametrize("name", list(INVALID))
def test_each_invalid_plan_is_refused_with_its_reason(name):
    plan = dataclasses.replace(GOOD, **INVALID[name])
    result = evaluate_plans(model=MODEL, cluster=CLUSTER, plan=plan)
    code = int(result.reasons)
    assert code & REASONS[name].bit, [r.name for r in describe_reasons(code)]
    assert not result.valid and np.isnan(result.iteration_time_s) and np.isnan(result.memory_total_bytes)


def test_ulysses_degrees_that_divide_the_heads_are_accepted():
    """DeepSpeed-Ulysses (Jacobs et al. 2023): any degree dividing the heads per TP rank is fine."""
    plan = dataclasses.replace(
        GOOD,
        sequence_parallel=float(SequenceParallel.ULYSSES),
        sequence_parallel_degree=np.array([8.0, 16.0]),
        tensor_parallel=np.array([2.0, 1.0]),
        data_parallel=1.0,
        pipeline_parallel=1.0,
        global_batch_size=2.0,
        micro_batch_size=2.0,
    )
    assert evaluate_plans(model=MODEL, cluster=CLUSTER, plan=plan).reasons.tolist() == [0, 0]


def test_out_of_memory_is_flagged_not_structural():
    """A well-formed plan that does not fit keeps its metrics and gets the OUT_OF_MEMORY bit only."""
    plan = dataclasses.replace(
        GOOD,
        data_parallel=16.0,
        tensor_parallel=1.0,
        pipeline_parallel=1.0,
        zero_stage=0.0,
        micro_batch_size=4.0,
        recompute=0.0,
    )
    result = evaluate_plans(model=MODEL, cluster=CLUSTER, plan=plan)
    assert result.valid and not result.fits and int(result.reasons) == OUT_OF_MEMORY.bit
    assert result.memory_headroom_bytes < 0 and np.isfinite(result.iteration_time_s)


def test_vectorised_equals_plan_by_plan():
    """One call over a grid of plans equals evaluating each plan alone (broadcasting, no loop over plans)."""
    dp = np.array([1.0, 2.0, 4.0, 8.0, 16.0])[:, None, None]
    tp = np.array([1.0, 2.0, 4.0, 8.0])[None, :, None]
    mb = np.array([1.0, 2.0, 4.0])[None, None, :]
    plan = dataclasses.replace(
        GOOD,
        data_parallel=dp,
        tensor_parallel=tp,
        pipeline_parallel=16.0 / (dp * tp),
        micro_batch_size=mb,
        zero_stage=0.0,
    )
    grid = evaluate_plans(model=MODEL, cluster=CLUSTER, plan=plan)
    assert grid.iteration_time_s.shape == (5, 4, 3)
    for i, j, k in np.ndindex(5, 4, 3):
        one = evaluate_plans(
            model=MODEL,
            cluster=CLUSTER,
            plan=dataclasses.replace(
                GOOD,
                data_parallel=dp[i, 0, 0],
                tensor_parallel=tp[0, j, 0],
                pipeline_parallel=16.0 / (dp[i, 0, 0] * tp[0, j, 0]),
                micro_batch_size=mb[0, 0, k],
                zero_stage=0.0,
            ),
        )
        assert int(one.reasons) == grid.reasons[i, j, k]
        np.testing.assert_equal(float(one.iteration_time_s), grid.iteration_time_s[i, j, k])
        np.testing.assert_equal(float(one.memory_total_bytes), grid.memory_total_bytes[i, j, k])


def test_breakdown_adds_up_to_the_iteration_time():
    result = evaluate_plans(model=MODEL, cluster=CLUSTER, plan=GOOD)
    parts = [v for k, v in result.as_dict().items() if k.startswith("time_")]
    assert sum(parts) == pytest.approx(float(result.iteration_time_s), rel=1e-12)
    memory = result.memory_weights_bytes + result.memory_gradients_bytes + result.memory_optimizer_bytes
    memory = memory + result.memory_activations_bytes + result.memory_buffers_bytes
    assert float(memory) == pytest.approx(float(result.memory_total_bytes), rel=1e-12)


def test_collectives_use_the_slowest_link_they_cross():
    """TP inside a node runs on NVLink; a DP ring with one rank per node runs on one HDR port; a ring with
    k ranks per node gets k ports; a measured slow node pair (Pipette) slows the rings that cross it. Links at
    their presets' bus bandwidth: A100 NVLink 0.7833 of 300 GB/s (NCCL's cap), HDR 0.9 of 25 GB/s (Calculon)."""
    nvlink, port = 0.7833 * 300e9, 0.9 * 25e9
    inside = group_link(cluster=CLUSTER, stride=1.0, size=8.0, pattern="ring")
    assert float(inside.bandwidth_bytes_per_s) == pytest.approx(nvlink, rel=1e-12) and not inside.crosses_nodes
    across = group_link(cluster=CLUSTER, stride=8.0, size=2.0, pattern="ring")
    assert float(across.bandwidth_bytes_per_s) == pytest.approx(port, rel=1e-12)
    four_per_node = group_link(cluster=CLUSTER, stride=2.0, size=8.0, pattern="ring")
    assert float(four_per_node.bandwidth_bytes_per_s) == pytest.approx(4 * port, rel=1e-12)
    measured = np.array([[0.0, 10e9], [12e9, 0.0]])
    slow = dataclasses.replace(CLUSTER, node_pair_bandwidth_bytes_per_s=measured)
    assert float(group_link(cluster=slow, stride=8.0, size=2.0, pattern="ring").bandwidth_bytes_per_s) == 10e9
    base = evaluate_plans(model=MODEL, cluster=CLUSTER, plan=dataclasses.replace(GOOD, overlap_grad_reduce=0.0))
    hetero = evaluate_plans(model=MODEL, cluster=slow, plan=dataclasses.replace(GOOD, overlap_grad_reduce=0.0))
    assert hetero.time_data_parallel_s > base.time_data_parallel_s


def test_select_keeps_the_valid_plans_for_a_second_pass():
    """Screening (plan_reasons) then evaluating the subset gives the same numbers as the full call."""
    tp = np.array([1.0, 2.0, 3.0, 4.0, 8.0])
    plan = dataclasses.replace(GOOD, tensor_parallel=tp, data_parallel=8.0 / tp)
    full = evaluate_plans(model=MODEL, cluster=CLUSTER, plan=plan)
    subset = evaluate_plans(model=MODEL, cluster=CLUSTER, plan=plan.select(full.valid))
    assert full.valid.tolist() == [True, True, False, True, True]
    np.testing.assert_array_equal(subset.iteration_time_s, full.iteration_time_s[full.valid])


def test_invalid_plans_are_not_computed_even_with_array_models():
    """Model fields broadcast with the plan; the valid plans' numbers do not depend on their invalid neighbours."""
    heads = np.array([36.0, 32.0])  # tp = 8 does not divide 36 heads
    model = ModelArrays.gpt(
        hidden_size=4608.0, num_layers=32.0, num_heads=heads, vocab_size=51200.0, sequence_length=2048.0
    )
    plan = dataclasses.replace(
        GOOD, tensor_parallel=8.0, data_parallel=1.0, pipeline_parallel=2.0, global_batch_size=8.0
    )
    pair = evaluate_plans(model=model, cluster=CLUSTER, plan=plan)
    alone = evaluate_plans(
        model=ModelArrays.gpt(
            hidden_size=4608.0, num_layers=32.0, num_heads=32.0, vocab_size=51200.0, sequence_length=2048.0
        ),
        cluster=CLUSTER,
        plan=plan,
    )
    assert pair.valid.tolist() == [False, True]
    assert np.isnan(pair.iteration_time_s[0]) and not pair.fits[0]
    assert pair.iteration_time_s[1] == float(alone.iteration_time_s)
    assert pair.memory_total_bytes[1] == float(alone.memory_total_bytes)
