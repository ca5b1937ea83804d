"""Mixture-of-experts training (`dse.engines.training.experts`): exact parameter splits, expert GEMM shapes,
EP sharding of the expert states, the EP all-to-alls on the links they cross, their overlap, validity, the
timeline's all-to-all segments and EP as a plan-search axis."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.collectives import all_to_all_time
from dse.engines.plan_search import SearchSpace, count_candidates
from dse.engines.plan_search.space import enumerate_layouts
from dse.engines.training import ModelArrays, PlanArrays, describe_reasons, evaluate_plans
from dse.engines.training.compute import layer_gemms
from dse.engines.training.experts import (
    FP8_DISPATCH_BYTES_PER_ELEMENT,
    OVERLAP_SM_SHARE,
    expert_communication,
    ffn_times,
    nodes_per_token,
    overlapped_all_to_all_s,
)
from dse.engines.training.memory import GRADIENT_BYTES_PER_PARAM, OPTIMIZER_BYTES_PER_PARAM, WEIGHT_BYTES_PER_PARAM
from dse.engines.training.timeline import simulate_timeline
from dse.engines.transformer import llm_parameter_breakdown
from dse.scenarios.kinds.training.published_moe import _cluster

CATALOG = default_catalog()
MOE = ["mixtral-8x7b", "mixtral-8x22b", "deepseek-v3", "qwen3-235b-a22b"]


def mixtral_plan(**changes):
    plan = PlanArrays(
        global_batch_size=64.0,
        micro_batch_size=1.0,
        sequence_length=4096.0,
        data_parallel=16.0,
        tensor_parallel=1.0,
        pipeline_parallel=4.0,
        flash_attention=1.0,
    )
    return dataclasses.replace(plan, **changes)


def h100(nodes=8):
    return _cluster(CATALOG, nodes, "h100-sxm", "nvlink4", "bf16")


def mixtral():
    return ModelArrays.from_llm(CATALOG.get("llms", "mixtral-8x7b"))


@pytest.mark.parametrize("model_id", MOE)
def test_total_and_activated_parameters_equal_the_exact_counts_and_the_published_ones(model_id):
    spec = CATALOG.get("llms", model_id)
    m = ModelArrays.from_llm(spec)
    exact = llm_parameter_breakdown(spec)
    assert float(m.total_params) == pytest.approx(float(exact.total), rel=1e-12)
    activated = float(m.total_params) - float(m.inactive_params)
    assert activated == pytest.approx(float(exact.activated), rel=1e-12)
    assert abs(float(m.total_params) - spec.published_params_count) <= spec.published_params_rounding_half_step
    counted = activated - (0.0 if spec.published_activated_counts_input_embedding else float(exact.embeddings))
    assert abs(counted - spec.published_activated_params_count) <= spec.published_activated_params_rounding_half_step
    # the layer split adds up to the total: L x (TP-split + replicated + routed experts) + embeddings + head + norm
    head = 0.0 if spec.tied_embeddings else float(m.word_embedding_params)
    layers = float(m.num_layers) * (
        float(m.layer_sharded_params) + float(m.layer_replicated_params) + float(m.layer_expert_params)
    )
    rest = float(m.word_embedding_params) + head + float(m.position_embedding_params) + float(m.final_norm_params)
    assert layers + rest == pytest.approx(float(m.total_params), rel=1e-12)


def test_routed_experts_run_at_their_per_expert_shape():
    """Per GPU: router T x h -> E, and E/EP experts of m_e = T*k*EP/E*load rows each (SwiGLU: 3 h d_e)."""
    m, device = mixtral(), h100().device
    b, s, t, ep, load = 1.0, 4096.0, 1.0, 8.0, 1.25
    g = layer_gemms(
        sequence_length=s,
        micro_batch_size=b,
        hidden_size=m.hidden_size,
        num_heads=m.num_heads,
        num_kv_heads=m.num_kv_heads,
        ffn_hidden_size=m.ffn_hidden_size,
        gated_ffn=m.gated_ffn,
        tensor_parallel=t,
        context=1.0,
    )
    ffn = ffn_times(
        device=device, model=m, b=b, s=s, t=t, n=1.0, expert_parallel=ep, load=load, dense_ffn=(g.ffn_in, g.ffn_out)
    )
    h, E, k, d_e = 4096.0, 8.0, 2.0, 14336.0
    m_e = s * k * ep / E * load
    assert float(ffn.forward_flop) == pytest.approx(2 * s * h * E + (E / ep) * 2 * m_e * 3 * h * d_e, rel=1e-12)
    # more rows per expert GEMM: the same FLOP at EP 8 run at least as efficiently as at EP 1
    at_one = ffn_times(
        device=device, model=m, b=b, s=s, t=t, n=1.0, expert_parallel=1.0, load=load, dense_ffn=(g.ffn_in, g.ffn_out)
    )
    assert float(at_one.forward_flop) == pytest.approx(float(ffn.forward_flop), rel=1e-12)
    assert float(ffn.forward_s) <= float(at_one.forward_s)


def test_expert_states_shard_over_ep_and_their_optimizer_over_the_expert_data_parallel_group():
    m, cluster = mixtral(), h100()
    r = evaluate_plans(model=m, cluster=cluster, plan=mixtral_plan(expert_parallel=np.array([1.0, 8.0]), zero_stage=1))
    layers, d, ep = 32.0 / 4.0, 16.0, np.array([1.0, 8.0])
    expert = layers * float(m.layer_expert_params) / ep
    gradient_bytes = float(cluster.gradient_reduce_bytes_per_param)  # the stack's fp32 main gradients under bf16
    assert gradient_bytes == 2.0 * GRADIENT_BYTES_PER_PARAM
    expected = (WEIGHT_BYTES_PER_PARAM + gradient_bytes) * expert + OPTIMIZER_BYTES_PER_PARAM * expert / (d / ep)
    np.testing.assert_allclose(r.memory_expert_states_bytes, expected, rtol=1e-12)
    assert r.memory_total_bytes[1] < r.memory_total_bytes[0]


def test_all_to_alls_are_four_per_moe_layer_on_nvlink_inside_a_node_and_slower_across_nodes():
    m, cluster = mixtral(), h100()
    r = evaluate_plans(model=m, cluster=cluster, plan=mixtral_plan(expert_parallel=np.array([1.0, 8.0])))
    assert r.time_expert_all_to_all_s[0] == 0.0
    T, k, h, M, layers = 4096.0, 2.0, 4096.0, 64.0 / 16.0, 8.0
    one = all_to_all_time(
        bytes_per_rank=2.0 * T * k * h,
        ranks=8.0,
        bandwidth_bytes_per_s=cluster.intra_node_bandwidth_bytes_per_s,
        latency_s=cluster.intra_node_latency_s,
    )
    assert r.time_expert_all_to_all_s[1] == pytest.approx(M * layers * 4.0 * float(one), rel=1e-12)
    # nodes of 4 GPUs: the 8 EP ranks span two nodes, half of each buffer crosses InfiniBand
    split = dataclasses.replace(cluster, nodes=16.0, gpus_per_node=4.0)
    across = evaluate_plans(model=m, cluster=split, plan=mixtral_plan(expert_parallel=8.0))
    assert float(across.time_expert_all_to_all_s) > 2.0 * r.time_expert_all_to_all_s[1]
    np.testing.assert_allclose(r.expert_all_to_all_bytes_per_layer[1], 4 * 7 / 8 * 2.0 * T * k * h, rtol=1e-12)
    parts = [
        r.time_forward_s,
        r.time_backward_s,
        r.time_recompute_s,
        r.time_pipeline_send_s,
        r.time_bubble_s,
        r.time_data_parallel_s,
        r.time_optimizer_s,
        r.time_expert_all_to_all_s,
    ]
    np.testing.assert_allclose(sum(parts), r.iteration_time_s, rtol=1e-12)


@pytest.mark.parametrize(("comm", "compute"), [(1.0, 4.0), (5.0, 4.0)])
def test_overlapped_all_to_alls_add_the_sm_share_or_what_outlasts_the_compute(comm, compute):
    u = OVERLAP_SM_SHARE
    added = float(overlapped_all_to_all_s(all_to_all_s=comm, compute_s=compute, overlap=1.0))
    assert added == pytest.approx(comm - compute if comm > compute / (1 - u) else u * comm, rel=1e-12)
    assert float(overlapped_all_to_all_s(all_to_all_s=comm, compute_s=compute, overlap=0.0)) == comm


@pytest.mark.parametrize(
    ("k", "nodes", "limit", "expected"),
    [(8, 8, 4, 4 * (1 - 0.75**8)), (8, 8, 0, 8 * (1 - (7 / 8) ** 8)), (2, 2, 4, 2 * (1 - 0.5**2)), (8, 1, 0, 1.0)],
)
def test_a_token_reaches_the_distinct_nodes_of_its_k_experts_at_most_the_node_limit(k, nodes, limit, expected):
    assert float(nodes_per_token(experts_per_token=k, nodes=nodes, node_limit=limit)) == pytest.approx(
        expected, rel=1e-12
    )


def deepseek_communication(**changes):
    model = ModelArrays.from_llm(CATALOG.get("llms", "deepseek-v3"))
    cluster = _cluster(CATALOG, 256, "h800-sxm", "nvlink4-h800", "fp8")
    kwargs = dict(
        cluster=cluster, model=model, b=1.0, s=4096.0, t=1.0, n=1.0, expert_parallel=64.0, load=1.0, full=False
    )
    return cluster, model, expert_communication(**{**kwargs, **changes})


def test_deduplicated_dispatch_crosses_the_network_once_per_remote_node_and_forwards_over_nvlink():
    cluster, model, plain = deepseek_communication()
    _, _, dedup = deepseek_communication(dedup=1.0, node_limit=4.0)
    T, k, h, G, N = 4096.0, 8.0, float(model.hidden_size), 8.0, 8.0
    network = 2.0 * T * h * 4 * (1 - 0.75**8) * (N - 1) / N
    nvlink = 2.0 * T * k * h * (G - 1) / G
    latency = (N - 1) * cluster.inter_node_latency_s + (G - 1) * cluster.intra_node_latency_s
    expected = max(
        network / cluster.inter_node_bandwidth_per_gpu_bytes_per_s, nvlink / cluster.intra_node_bandwidth_bytes_per_s
    )
    assert float(dedup.one_all_to_all_s) == pytest.approx(expected + latency, rel=1e-12)
    assert float(dedup.bytes_per_moe_layer) == pytest.approx(4.0 * (network + nvlink), rel=1e-12)
    # plain: 56 of the 64 ranks' shares of every routed copy cross InfiniBand
    assert float(plain.one_all_to_all_s) > 2.0 * float(dedup.one_all_to_all_s)
    # the node limit bounds the nodes a token reaches, so it lowers the deduplicated traffic only
    _, _, unlimited = deepseek_communication(dedup=1.0)
    assert float(unlimited.one_all_to_all_s) > float(dedup.one_all_to_all_s)
    _, _, limited_plain = deepseek_communication(node_limit=4.0)
    assert float(limited_plain.one_all_to_all_s) == float(plain.one_all_to_all_s)


def test_fp8_dispatch_sends_two_of_the_four_all_to_alls_at_one_byte_and_a_scale_per_128():
    cluster, _, plain = deepseek_communication()
    _, _, fp8 = deepseek_communication(fp8_dispatch=1.0)
    assert FP8_DISPATCH_BYTES_PER_ELEMENT == 1.0 + 4.0 / 128.0
    mean = (FP8_DISPATCH_BYTES_PER_ELEMENT + 2.0) / 2.0
    assert float(fp8.bytes_per_moe_layer) == pytest.approx(float(plain.bytes_per_moe_layer) * mean / 2.0, rel=1e-12)
    latency = 63.0 * cluster.inter_node_latency_s
    bandwidth_part = float(plain.one_all_to_all_s) - latency
    assert float(fp8.one_all_to_all_s) == pytest.approx(bandwidth_part * mean / 2.0 + latency, rel=1e-12)


def test_deduplication_inside_one_node_changes_nothing():
    plan = mixtral_plan(expert_parallel=8.0)
    plain = evaluate_plans(model=mixtral(), cluster=h100(), plan=plan)
    dedup = evaluate_plans(
        model=mixtral(),
        cluster=h100(),
        plan=dataclasses.replace(plan, expert_dispatch_dedup=1.0, expert_node_limit=1.0),
    )
    assert float(dedup.iteration_time_s) == float(plain.iteration_time_s)


@pytest.mark.parametrize(
    "change",
    [
        dict(expert_dispatch_dedup=0.5),
        dict(expert_dispatch_fp8=2.0),
        dict(expert_node_limit=2.5),
        dict(expert_node_limit=-1.0),
    ],
)
def test_malformed_dispatch_settings_name_their_reason(change):
    r = evaluate_plans(model=mixtral(), cluster=h100(), plan=mixtral_plan(expert_parallel=8.0, **change))
    assert "EXPERT_LOAD" in {x.name for x in describe_reasons(int(r.reasons))}


@pytest.mark.parametrize(
    ("model_id", "ep", "reason"),
    [("mixtral-8x7b", 3.0, "EP_EXPERTS"), ("mixtral-8x7b", 32.0, "EP_LAYOUT"), ("llama2-7b", 2.0, "EP_DENSE")],
)
def test_impossible_expert_parallel_plans_name_their_reason(model_id, ep, reason):
    model = ModelArrays.from_llm(CATALOG.get("llms", model_id))
    r = evaluate_plans(model=model, cluster=h100(), plan=mixtral_plan(expert_parallel=ep))
    assert reason in {x.name for x in describe_reasons(int(r.reasons))}


def test_the_timeline_draws_the_all_to_alls_as_their_own_segments():
    r = evaluate_plans(model=mixtral(), cluster=h100(), plan=mixtral_plan(expert_parallel=8.0))
    kwargs = dict(
        schedule=1,
        stages=4,
        micro_batches=4,
        virtual_stages=1,
        chunk_forward_s=float(r.chunk_forward_s),
        chunk_backward_s=float(r.chunk_backward_s),
        send_s=float(r.pipeline_send_s),
    )
    plain = simulate_timeline(**kwargs)
    split = simulate_timeline(
        **kwargs,
        chunk_forward_all_to_all_s=float(r.chunk_forward_all_to_all_s),
        chunk_backward_all_to_all_s=float(r.chunk_backward_all_to_all_s),
    )
    assert split.pipeline_end_s == plain.pipeline_end_s
    a2a = sum(e.end_s - e.start_s for e in split.events if e.operation == "all_to_all")
    per_stage = 4 * (float(r.chunk_forward_all_to_all_s) + float(r.chunk_backward_all_to_all_s))
    assert a2a == pytest.approx(4 * per_stage, rel=1e-9)


def test_plan_search_tries_every_ep_that_divides_the_experts_and_data_parallelism_and_only_ep_1_when_dense():
    space = SearchSpace(sequence_parallel=(0,), node_counts=(2,))
    moe = enumerate_layouts(space=space, nodes=2, gpus_per_node=8, sequence_parallel=(0,), num_experts=8)
    dense = enumerate_layouts(space=space, nodes=2, gpus_per_node=8, sequence_parallel=(0,))
    assert set(dense.expert_parallel) == {1.0}
    assert set(moe.expert_parallel) == {1.0, 2.0, 4.0, 8.0}
    assert np.all(np.mod(moe.data_parallel, moe.expert_parallel) == 0)
    counted = count_candidates(
        space=space, nodes=2, gpus_per_node=8, global_batch_size=64, num_layers=32, has_ssd=False, num_experts=8
    )
    assert counted[0] == len(moe)


def test_zero3_gathers_the_routed_experts_over_the_expert_data_parallel_group():
    from dse.engines.training.zero3 import zero3_exposed_s

    common = dict(
        runtime=0.0,
        layers=4.0,
        largest_tensor_params=1e7,
        rest_params=0.0,
        zero_group=16.0,
        bandwidth_bytes_per_s=1e11,
        latency_s=1e-5,
        forward_layer_s=1e-3,
        backward_layer_s=2e-3,
        full_recompute=0.0,
        overlap=0.0,
    )
    dense_only = zero3_exposed_s(layer_params=3e8, **common)
    # an expert-data-parallel group of one rank (EP = DP) gathers nothing for the experts
    alone = zero3_exposed_s(layer_params=5e8, expert_layer_params=2e8, expert_group=1.0, **common)
    assert float(alone) == float(dense_only)
    # a larger group on a slower link costs more than the dense part alone
    shared = zero3_exposed_s(
        layer_params=5e8,
        expert_layer_params=2e8,
        expert_group=4.0,
        expert_bandwidth_bytes_per_s=5e10,
        expert_latency_s=1e-5,
        **common,
    )
    assert float(shared) > float(dense_only)
    r = evaluate_plans(
        model=mixtral(),
        cluster=h100(),
        plan=mixtral_plan(expert_parallel=8.0, zero_stage=3.0, pipeline_parallel=1.0, data_parallel=64.0),
    )
    assert float(r.time_zero_gather_s) > 0.0
