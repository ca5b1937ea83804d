"""Context parallelism and uneven stages together with mixture-of-experts training: the EP group is drawn
from the data- and context-parallel ranks (Megatron-Core), expert states shard over DP x CP / EP, and an MoE
model's stages carry their own layers' experts."""

from __future__ import annotations

import dataclasses

import numpy as np

from dse.catalog import default_catalog
from dse.engines.plan_search import SearchSpace
from dse.engines.plan_search.space import count_candidates, enumerate_layouts
from dse.engines.training import ClusterArrays, ModelArrays, PlanArrays, SequenceParallel, evaluate_plans
from dse.engines.training.validity import REASONS
from dse.specs.network import ClusterSpec

CATALOG = default_catalog()
MIXTRAL = ModelArrays.from_llm(CATALOG.get("llms", "mixtral-8x7b"))  # 32 layers, 8 experts
CLUSTER = ClusterArrays.from_spec(
    ClusterSpec(
        nodes=4,
        gpus_per_node=8,
        accelerator=CATALOG.get("accelerators", "h100-sxm"),
        intra_node_link=CATALOG.get("interconnects", "nvlink4"),
        inter_node_link=CATALOG.get("interconnects", "ib-ndr"),
        inter_node_links_per_node=8,
    )
)
#: 32 GPUs: TP 2 x CP 4 x PP 2 x DP 2, EP 8 (from the 8 DP x CP ranks), 32K tokens, Megatron-SP, ZeRO-1.
PLAN = PlanArrays(
    global_batch_size=16.0,
    micro_batch_size=1.0,
    sequence_length=32768.0,
    data_parallel=2.0,
    tensor_parallel=2.0,
    pipeline_parallel=2.0,
    sequence_parallel=float(SequenceParallel.MEGATRON),
    zero_stage=1.0,
    flash_attention=1.0,
    context_parallel=4.0,
    expert_parallel=8.0,
)


def one(result, name):
    return float(np.asarray(getattr(result, name)).reshape(-1)[0])


def structural(result) -> int:
    return int(np.asarray(result.reasons).reshape(-1)[0]) & ~(1 << 16)  # out of memory aside


def test_ep_is_drawn_from_data_and_context_parallel_ranks():
    layout_bit = REASONS["EP_LAYOUT"].bit
    assert structural(evaluate_plans(model=MIXTRAL, cluster=CLUSTER, plan=PLAN)) == 0  # 8 divides d x cp = 8
    no_cp = dataclasses.replace(PLAN, context_parallel=1.0, data_parallel=8.0)  # the same 8 ranks, all DP
    assert structural(evaluate_plans(model=MIXTRAL, cluster=CLUSTER, plan=no_cp)) == 0
    too_few = dataclasses.replace(PLAN, context_parallel=2.0, pipeline_parallel=4.0)  # d x cp = 4
    assert structural(evaluate_plans(model=MIXTRAL, cluster=CLUSTER, plan=too_few)) == layout_bit


def test_expert_states_shard_over_dp_times_cp_over_ep():
    """EP 8 over d x cp = 8 ranks leaves an expert-data-parallel group of 1, CP or not: the same expert states."""
    with_cp = evaluate_plans(model=MIXTRAL, cluster=CLUSTER, plan=PLAN)
    no_cp = evaluate_plans(
        model=MIXTRAL, cluster=CLUSTER, plan=dataclasses.replace(PLAN, context_parallel=1.0, data_parallel=8.0)
    )
    assert one(with_cp, "memory_expert_states_bytes") > 0
    assert one(with_cp, "memory_expert_states_bytes") == one(no_cp, "memory_expert_states_bytes")
    assert one(with_cp, "time_context_parallel_s") > 0 and one(with_cp, "time_expert_all_to_all_s") > 0


def test_moe_stages_at_the_even_share_are_the_even_plan():
    even = evaluate_plans(model=MIXTRAL, cluster=CLUSTER, plan=PLAN)
    stated = evaluate_plans(
        model=MIXTRAL, cluster=CLUSTER, plan=dataclasses.replace(PLAN, first_stage_layers=16.0, last_stage_layers=16.0)
    )
    for name in ("iteration_time_s", "memory_total_bytes", "memory_expert_states_bytes", "time_optimizer_s"):
        assert np.isclose(one(stated, name), one(even, name), rtol=1e-12), name


def test_a_lighter_last_stage_holds_fewer_experts():
    """PP 4 over 32 layers: 9 / 7 / 7 / 9 leaves the middle stages 7 layers each; the first stage peaks with
    9 layers' experts (each stage holds its own layers' routed experts)."""
    plan = dataclasses.replace(
        PLAN, pipeline_parallel=4.0, data_parallel=1.0, tensor_parallel=1.0, context_parallel=8.0
    )
    even = evaluate_plans(model=MIXTRAL, cluster=CLUSTER, plan=plan)
    uneven = evaluate_plans(
        model=MIXTRAL, cluster=CLUSTER, plan=dataclasses.replace(plan, first_stage_layers=9.0, last_stage_layers=9.0)
    )
    assert structural(uneven) == 0
    ratio = one(uneven, "memory_expert_states_bytes") / one(even, "memory_expert_states_bytes")
    assert np.isclose(ratio, 9.0 / 8.0, rtol=1e-12)


def test_plan_search_ep_divides_dp_times_sequence_times_cp():
    space = SearchSpace(context_parallel_exchanges=(0,), uneven_stages=True, node_counts=(4,))
    layouts = enumerate_layouts(space=space, nodes=4, gpus_per_node=8, sequence_parallel=space.sequence_parallel,
                                num_layers=32, num_experts=8)  # fmt: skip
    ranks = layouts.data_parallel * layouts.sequence_parallel_degree * layouts.context_parallel
    assert np.all(np.mod(ranks, layouts.expert_parallel) == 0)
    from_cp = (layouts.context_parallel > 1) & (np.mod(layouts.data_parallel, layouts.expert_parallel) != 0)
    assert from_cp.any()  # some EP groups need the context-parallel ranks
    assert (layouts.first_stage_layers > 0).any() and (layouts.expert_parallel > 1).any()
    counted = count_candidates(
        space=space, nodes=4, gpus_per_node=8, global_batch_size=16, num_layers=32, has_ssd=False, num_experts=8
    )
    assert counted[0] == len(layouts)
