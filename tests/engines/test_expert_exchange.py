"""Data-parallel attention with expert parallelism: the DeepEP-calibrated all-to-alls, the per-rank MoE work,
two-batch overlap and the memory of a GPU (exact formulas tested exactly)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from dse.catalog import default_catalog
from dse.catalog.calibration import load_fits, stack_device
from dse.engines import collectives
from dse.engines.collectives import expert_all_to_all_time, nodes_per_token, overlapped_time
from dse.engines.decoder_ops import EXPERT_EXCHANGE_OPS, OP_NAMES, ExpertExchange, decoder_layer_ops, price_layer_ops
from dse.engines.inference import Deployment, Workload, model_shape, routed_expert_parameters, run_inference
from dse.engines.transformer import expected_distinct_experts

CATALOG = default_catalog()
CALIBRATION = Path(__file__).resolve().parents[2] / "models_db" / "calibration"
STEM = "h800-sxm.fp8.deepep.all_to_all"
HIDDEN, TOP_K = 7168, 8
NVLINK_H800, CX7 = 200e9, 50e9  # nvlink4-h800 and ib-ndr presets, per direction


def test_direct_all_to_all_is_alpha_plus_the_slower_of_nvlink_and_network() -> None:
    """n = 32 over nodes of 8: 7/32 of the copies on NVLink, 24/32 through the NIC, the network's alpha."""
    data = 1e7
    nvlink = data * 7 / 32 / (collectives.DEEPEP_LOW_LATENCY_NVLINK_FRACTION * 450e9)
    network = data * 24 / 32 / (collectives.DEEPEP_LOW_LATENCY_NETWORK_FRACTION * 50e9)
    expected = collectives.DEEPEP_NETWORK_LATENCY_S + max(nvlink, network)
    got = expert_all_to_all_time(
        bytes_per_rank=data,
        ranks=32,
        ranks_per_node=8,
        nvlink_bandwidth_bytes_per_s=450e9,
        network_bandwidth_bytes_per_s=50e9,
        experts_per_token=8,
    )
    assert float(got) == pytest.approx(expected, rel=1e-12)
    one_node = expert_all_to_all_time(
        bytes_per_rank=data,
        ranks=8,
        ranks_per_node=8,
        nvlink_bandwidth_bytes_per_s=450e9,
        network_bandwidth_bytes_per_s=50e9,
        experts_per_token=8,
    )
    assert float(one_node) == pytest.approx(
        collectives.DEEPEP_NVLINK_LATENCY_S + data * 7 / 8 / (collectives.DEEPEP_LOW_LATENCY_NVLINK_FRACTION * 450e9),
        rel=1e-12,
    )
    assert (
        float(
            expert_all_to_all_time(
                bytes_per_rank=data,
                ranks=1,
                ranks_per_node=8,
                nvlink_bandwidth_bytes_per_s=1.0,
                network_bandwidth_bytes_per_s=1.0,
                experts_per_token=8,
            )
        )
        == 0.0
    )


def test_forwarded_all_to_all_crosses_the_network_once_per_remote_node_reached() -> None:
    """Normal (prefill) kernels: bytes/k x D(k, N, M) x (N-1)/N over the NIC, (m-1)/m over NVLink."""
    data, n, m, k, limit = 1e9, 32.0, 8.0, 8.0, 4.0
    nodes = n / m
    reached = float(nodes_per_token(experts_per_token=k, nodes=nodes, node_limit=limit))
    assert reached == pytest.approx(4.0 * (1.0 - 0.75**8))
    network = data / k * reached * (nodes - 1) / nodes / (collectives.DEEPEP_NORMAL_NETWORK_FRACTION * CX7)
    nvlink = data * (m - 1) / m / (collectives.DEEPEP_NORMAL_NVLINK_FRACTION * 450e9)
    got = expert_all_to_all_time(
        bytes_per_rank=data,
        ranks=n,
        ranks_per_node=m,
        nvlink_bandwidth_bytes_per_s=450e9,
        network_bandwidth_bytes_per_s=CX7,
        experts_per_token=k,
        node_limit=limit,
        forwarded=True,
    )
    assert float(got) == pytest.approx(collectives.DEEPEP_NETWORK_LATENCY_S + max(network, nvlink), rel=1e-12)


def test_the_deepep_constants_are_the_fit_and_reproduce_the_low_latency_kernel_table() -> None:
    """The constants are fit_deepep.py's output; every low-latency row of DeepEP's table (H800, CX7, 128 tokens,
    top-8, FP8 dispatch, BF16 combine) within the fit's stated largest error."""
    fit = json.loads((CALIBRATION / "fits" / f"{STEM}.deepep-fit.json").read_text())
    assert fit["low_latency_network"]["alpha_s"] == collectives.DEEPEP_NETWORK_LATENCY_S
    assert fit["low_latency_nvlink"]["alpha_s"] == collectives.DEEPEP_NVLINK_LATENCY_S
    assert fit["low_latency_network"]["bandwidth_fraction"] == collectives.DEEPEP_LOW_LATENCY_NETWORK_FRACTION
    assert fit["low_latency_nvlink"]["bandwidth_fraction"] == collectives.DEEPEP_LOW_LATENCY_NVLINK_FRACTION
    assert fit["normal_network"]["bandwidth_fraction"] == collectives.DEEPEP_NORMAL_NETWORK_FRACTION
    assert fit["normal_nvlink"]["bandwidth_fraction"] == collectives.DEEPEP_NORMAL_NVLINK_FRACTION
    data = json.loads((CALIBRATION / "data" / f"{STEM}.json").read_text())
    assert data["source"]["files"][0]["commit"] == "567632dd59810d77b3cc05553df953cc0f779799"
    rows = [dict(zip(data["columns"], row, strict=True)) for row in data["rows"]]
    largest = max(fit["low_latency_network"]["residuals"]["max_abs_pct_error"], 0.1) / 100.0
    checked = 0
    for row in rows:
        if row["mode"] != "low_latency":
            continue
        element = 1.0 + 4.0 / 128.0 if row["op"] == "dispatch" else 2.0
        predicted = expert_all_to_all_time(
            bytes_per_rank=row["tokens_per_rank"] * TOP_K * HIDDEN * element,
            ranks=row["expert_parallel"],
            ranks_per_node=8,
            nvlink_bandwidth_bytes_per_s=NVLINK_H800,
            network_bandwidth_bytes_per_s=CX7,
            experts_per_token=TOP_K,
        )
        assert float(predicted) == pytest.approx(row["time_s"], rel=largest + 1e-3), row
        checked += 1
    assert checked == 12


def test_overlap_adds_what_the_compute_does_not_cover() -> None:
    assert float(overlapped_time(communication_s=3.0, compute_s=2.0, sm_share=0.0)) == 1.0
    assert float(overlapped_time(communication_s=1.0, compute_s=2.0, sm_share=0.0)) == 0.0
    u = 20.0 / 132.0
    assert float(overlapped_time(communication_s=1.0, compute_s=2.0, sm_share=u)) == pytest.approx(u)


def _device():
    acc = CATALOG.get("accelerators", "h100-sxm")
    stack = CATALOG.get("stacks", "vllm-cuda-graphs")
    return stack_device(load_fits(CATALOG.root), acc, "fp8", stack).device


def _exchange(overlap: bool) -> ExpertExchange:
    return ExpertExchange(
        ranks_per_node=8.0,
        nvlink_bandwidth_bytes_per_s=450e9,
        network_bandwidth_bytes_per_s=CX7,
        dispatch_bytes_per_element=1.0 + 4.0 / 128.0,
        combine_bytes_per_element=2.0,
        node_limit=4.0,
        two_batch_overlap=overlap,
    )


def _layer(batch: float, *, dp: float = 1.0, exchange: ExpertExchange | None = None, tp: float = 1.0):
    shape = model_shape(CATALOG.get("llms", "deepseek-v3"))
    return decoder_layer_ops(
        batch=batch,
        query_tokens=1.0,
        context_tokens=2000.0,
        hidden_size=shape.hidden_size,
        num_heads=shape.num_heads,
        num_kv_heads=shape.num_kv_heads,
        ffn_hidden_size=shape.ffn_hidden_size,
        gated_ffn=True,
        layernorm=False,
        tensor_parallel=tp,
        weight_bytes=1.0,
        activation_bytes=1.0,
        kv_cache_bytes=2.0,
        head_dim=shape.head_dim,
        moe=shape.moe,
        moe_layer_fraction=shape.moe_layer_fraction,
        mla=shape.mla,
        expert_parallel=dp * tp,
        attention_data_parallel=dp,
        expert_exchange=exchange,
    )


def test_data_parallel_attention_spreads_the_routed_experts_and_adds_dispatch_and_combine() -> None:
    """Per GPU: the FLOP of its own tokens (dp cancels), the weights of D(dp*B)/dp routed experts and the shared
    one; the ops gain the dispatch before the expert GEMMs and the combine after them."""
    moe = model_shape(CATALOG.get("llms", "deepseek-v3")).moe
    assert moe is not None
    plain = _layer(64.0)
    spread = _layer(64.0, dp=32.0, exchange=_exchange(False))
    assert list(spread) == [
        *OP_NAMES[:8],
        "expert_dispatch",
        "ffn_up",
        "ffn_act",
        "ffn_down",
        "expert_combine",
        "all_reduce_ffn",
    ]
    assert list(plain) == list(OP_NAMES)
    for name in ("ffn_up", "ffn_act", "ffn_down"):
        assert float(spread[name].flop) == pytest.approx(float(plain[name].flop), rel=1e-12)
    touched = float(expected_distinct_experts(256, 8, 64.0 * 32))
    f = (61 - 3) / 61  # MoE layers' share
    # ffn_down, 1-byte weights and activations, tp 1: the touched experts of the 32 ranks' tokens over 32 GPUs and
    # the shared expert; 64 x (8 + 1) token-expert pairs in and out of this GPU (dp x k / ep = 8 routed each)
    moe_bytes = (touched / 32.0 + 1.0) * 2048 * 7168 + 64 * 9 * 2048 + 64 * 9 * 7168
    dense_bytes = 18432 * 7168 + 64 * (18432 + 7168)
    assert float(spread["ffn_down"].bytes_moved) == pytest.approx((1 - f) * dense_bytes + f * moe_bytes, rel=1e-12)
    dispatch = spread["expert_dispatch"]
    assert float(dispatch.link_bytes) == 64.0 * 8 * 7168 * (1.0 + 4.0 / 128.0)
    assert float(spread["expert_combine"].link_bytes) == 64.0 * 8 * 7168 * 2.0


def test_two_batch_overlap_runs_each_op_per_half_batch_and_hides_the_all_to_alls_under_compute() -> None:
    device = _device()
    links = {"tensor_parallel": 1.0, "link_bandwidth_bytes_per_s": 450e9, "link_latency_s": 3.4e-6}
    halves = price_layer_ops(_layer(64.0, dp=32.0, exchange=_exchange(False)), device, **links)
    tbo = price_layer_ops(_layer(128.0, dp=32.0, exchange=_exchange(True)), device, **links)
    compute = 0.0
    for name in tbo:
        if name in EXPERT_EXCHANGE_OPS:
            assert float(tbo[name].link_s) == pytest.approx(2.0 * float(halves[name].link_s), rel=1e-12)
        elif name not in ("all_reduce_attn", "all_reduce_ffn"):
            assert float(tbo[name].time_s) == pytest.approx(2.0 * float(halves[name].time_s), rel=1e-12)
            compute += float(tbo[name].time_s)
    communication = sum(float(tbo[n].link_s) for n in EXPERT_EXCHANGE_OPS)
    added = sum(float(tbo[n].time_s) for n in EXPERT_EXCHANGE_OPS)
    assert added == pytest.approx(max(communication - compute, 0.0), abs=1e-12)


def test_a_replica_of_dp_gpus_holds_its_share_of_the_routed_experts_and_decodes_dp_batches() -> None:
    spec = CATALOG.get("llms", "deepseek-v3")
    shape = model_shape(spec)
    base = Deployment(
        tensor_parallel=1.0,
        pipeline_parallel=1.0,
        link_bandwidth_bytes_per_s=450e9,
        link_latency_s=3.4e-6,
        weight_bytes=1.0,
        activation_bytes=1.0,
        kv_cache_bytes=2.0,
    )
    spread = dataclasses.replace(
        base, attention_data_parallel=72.0, expert_parallel=72.0, expert_exchange=_exchange(True)
    )
    workload = Workload(
        batch=256.0, prompt_tokens=1950.0, output_tokens=100.0, context_tokens=2000.0, peak_context_tokens=2050.0
    )
    result = run_inference(system="gpu_only", shape=shape, device=_device(), deployment=spread, workload=workload)
    total, routed = float(shape.parameters().total), float(routed_expert_parameters(shape))
    assert routed == pytest.approx(58 * 256 * 3 * 7168 * 2048, rel=1e-12)
    assert float(result.weights_bytes_per_device) == pytest.approx(total - routed + routed / 72.0, rel=1e-12)
    assert float(result.devices) == 72.0
    assert float(result.throughput_tokens_per_s) == pytest.approx(
        72.0 * 256.0 / float(result.time_per_output_token_s), rel=1e-12
    )
    assert float(result.throughput_tokens_per_s_per_device) == pytest.approx(
        float(result.throughput_tokens_per_s) / 72.0, rel=1e-12
    )
    # the MLA latent of each GPU's own 256 requests
    assert float(result.kv_cache_bytes_per_device) == pytest.approx(256 * 2050 * 61 * 576 * 2.0, rel=1e-12)
    assert float(result.expert_all_to_all_time_s) > 0 and math.isfinite(float(result.expert_all_to_all_time_s))


def test_a_serving_iteration_of_a_dp_replica_is_the_inference_engines_step_of_one_rank() -> None:
    """The serving table's decode-only iteration at DP x b requests is the inference engine's decode step of one
    DP rank's b requests (same ops, same all-to-alls, the ranks stepping together)."""
    from dse.engines.serving import iteration_time_table

    shape = model_shape(CATALOG.get("llms", "deepseek-v3"))
    deployment = Deployment(
        tensor_parallel=1.0,
        pipeline_parallel=1.0,
        link_bandwidth_bytes_per_s=450e9,
        link_latency_s=3.4e-6,
        weight_bytes=1.0,
        activation_bytes=1.0,
        kv_cache_bytes=2.0,
        attention_data_parallel=32.0,
        expert_parallel=32.0,
        expert_exchange=_exchange(True),
    )
    device = _device()
    table = iteration_time_table(
        shape=shape,
        device=device,
        deployment=deployment,
        max_decode_batch=4096,
        max_prefill_tokens=8192,
        max_context_tokens=4096,
    )
    batch, context = table.decode_batch[-3], table.context_tokens[-2]
    step = run_inference(
        system="gpu_only",
        shape=shape,
        device=device,
        deployment=deployment,
        workload=Workload(
            batch=batch / 32.0,
            prompt_tokens=context,
            output_tokens=1.0,
            context_tokens=context,
            peak_context_tokens=context + 1.0,
        ),
    )
    assert table.at(batch, 0.0, context) == pytest.approx(float(step.time_per_output_token_s), rel=1e-9)
