"""Training compute priced op by op: each GEMM by its own shape (forward, data and weight gradients), element-wise
launches by the stack, fp8 GEMMs on the fp8 kernel curve with their casts and fp8 weight copies."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.catalog.calibration import load_fits
from dse.engines.training import ModelArrays, PlanArrays, Recompute, SequenceParallel, evaluate_plans
from dse.engines.training.compute import (
    Gemm,
    eager_layer_traffic,
    every_other_matmul_shares,
    gemm_pass_times,
    unfused_layer_kernels,
)
from dse.engines.training.memory import FP8_WEIGHT_COPY_BYTES_PER_PARAM
from dse.scenarios.base import InputError
from dse.scenarios.registry import KINDS
from dse.scenarios.shared.training_device import training_cluster
from dse.specs.network import ClusterSpec

CATALOG = default_catalog()
FITS = load_fits(CATALOG.root)


def h100_node(dtype: str, stack: str | None = "megatron-core-te"):
    spec = ClusterSpec(
        nodes=1,
        gpus_per_node=8,
        accelerator=CATALOG.get("accelerators", "h100-sxm"),
        intra_node_link=CATALOG.get("interconnects", "nvlink4"),
        inter_node_link=CATALOG.get("interconnects", "ib-ndr"),
        inter_node_links_per_node=8,
    )
    return training_cluster(spec, dtype, None if stack is None else CATALOG.get("stacks", stack), FITS)


def test_each_pass_of_a_gemm_is_priced_at_its_own_shape():
    """Forward C[m,n] = A[m,k] B[k,n]; data gradient m x k over n; weight gradient k x n over m (exactly)."""
    device = h100_node("bf16").device
    m, n, k = np.array([512.0, 8192.0]), 3 * 4096.0, 4096.0
    [(forward, backward)] = gemm_pass_times(device, [Gemm(m, np.asarray(n), np.asarray(k), np.ones(()))])
    np.testing.assert_array_equal(forward, device.gemm_time_s(m, n, k).time_s)
    expected = device.gemm_time_s(m, k, n).time_s + device.gemm_time_s(np.full(2, k), n, m).time_s
    np.testing.assert_allclose(backward, expected, rtol=1e-15)


def test_narrow_tensor_parallel_shards_run_below_the_rate_of_whole_gemms():
    """One rate for every GEMM made TP free of compute cost; by shape, thin shards reach a lower rate."""
    model = ModelArrays.from_llm(CATALOG.get("llms", "llama2-7b"))
    plan = PlanArrays(
        global_batch_size=8.0,
        micro_batch_size=1.0,
        sequence_length=2048.0,
        data_parallel=np.array([8.0, 1.0]),
        tensor_parallel=np.array([1.0, 8.0]),
        pipeline_parallel=1.0,
        flash_attention=1.0,
    )
    result = evaluate_plans(model=model, cluster=h100_node("bf16"), plan=plan)
    # per GPU: the same executed FLOP over 8 GPUs either way, against each plan's forward time
    flop_per_forward_second = np.asarray(result.executed_flop_per_iteration) / 8.0 / np.asarray(result.time_forward_s)
    assert flop_per_forward_second[1] < 0.9 * flop_per_forward_second[0]


def test_stacks_that_fuse_the_norms_and_activation_launch_fewer_kernels():
    assert unfused_layer_kernels(h100_node("bf16").device) == 2.0  # Transformer Engine: two dropout-adds
    eager = h100_node("bf16", stack="pytorch-eager").device
    assert unfused_layer_kernels(eager) == 5.0  # plus two norms and the activation


LLAMA_70B_PLAN = PlanArrays(
    global_batch_size=16.0,
    micro_batch_size=1.0,
    sequence_length=4096.0,
    data_parallel=1.0,
    tensor_parallel=8.0,
    pipeline_parallel=1.0,
    sequence_parallel=SequenceParallel.MEGATRON,
    recompute=2.0,
    flash_attention=1.0,
)


def test_fp8_speeds_up_the_gemms_but_not_twofold():
    """The DeepGEMM fp8 curve has twice bf16's peak but not twice its achieved rate; attention, element-wise ops
    and the logits stay in bf16 and casts are added, so an iteration gains less than 2x."""
    model = ModelArrays.from_llm(CATALOG.get("llms", "llama3-70b"))
    bf16 = evaluate_plans(model=model, cluster=h100_node("bf16"), plan=LLAMA_70B_PLAN)
    fp8 = evaluate_plans(model=model, cluster=h100_node("fp8"), plan=LLAMA_70B_PLAN)
    ratio = float(bf16.time_forward_s) / float(fp8.time_forward_s)
    assert 1.2 < ratio < 2.0


def test_fp8_keeps_an_fp8_copy_and_transpose_of_every_layer_weight():
    model = ModelArrays.from_llm(CATALOG.get("llms", "llama3-70b"))
    bf16 = evaluate_plans(model=model, cluster=h100_node("bf16"), plan=LLAMA_70B_PLAN)
    fp8 = evaluate_plans(model=model, cluster=h100_node("fp8"), plan=LLAMA_70B_PLAN)
    layer_params = float(model.num_layers) * float(model.layer_sharded_params) / 8.0
    extra = float(fp8.memory_weights_bytes) - float(bf16.memory_weights_bytes)
    assert extra == pytest.approx(FP8_WEIGHT_COPY_BYTES_PER_PARAM * layer_params, rel=1e-12)
    assert float(fp8.memory_gradients_bytes) == float(bf16.memory_gradients_bytes)
    assert float(fp8.memory_optimizer_bytes) == float(bf16.memory_optimizer_bytes)


def test_without_a_stack_the_roofline_prices_every_gemm_at_the_accelerators_single_efficiency():
    """No kernel fits (software_stack null): the device has no GEMM model and the roofline stands in."""
    cluster = h100_node("bf16", stack=None)
    assert cluster.device.gemm is None and cluster.device.stack is None
    stacked = dataclasses.replace(cluster, device=h100_node("bf16").device)
    model = ModelArrays.from_llm(CATALOG.get("llms", "llama3-70b"))
    roofline = evaluate_plans(model=model, cluster=cluster, plan=LLAMA_70B_PLAN)
    kernels = evaluate_plans(model=model, cluster=stacked, plan=LLAMA_70B_PLAN)
    assert float(roofline.iteration_time_s) != float(kernels.iteration_time_s)


@pytest.mark.parametrize("kind", ["training", "plan_search"])
def test_fp8_on_a_part_without_fp8_tensor_cores_is_refused_naming_dtype(kind):
    k = KINDS[kind]
    inputs = {"model": "llama2-7b", "dtype": "fp8", "cluster": {"accelerator": "a100-80gb"}}
    if kind == "training":
        inputs |= {"global_batch_size": 8, "micro_batch_size": 1, "data_parallel": 8}
    with pytest.raises(InputError) as refused:
        k.resolve(k.inputs_model.model_validate(inputs), CATALOG)
    assert refused.value.field == "dtype" and "a100-80gb" in str(refused.value)


def test_flash_attention_backward_takes_the_forward_backward_table_less_the_forward():
    """H100 has FlashAttention-2 forward and forward + backward tables: the backward and recomputation take the
    pair's time less the forward's (split 2 : 0.5), not 2.5x the forward's time; the forward is unchanged."""
    cluster = h100_node("bf16")
    device = cluster.device
    assert device.attention_fwd_bwd is not None and device.attention_fwd_bwd.flop_multiplier == 3.5
    without = dataclasses.replace(cluster, device=dataclasses.replace(device, attention_fwd_bwd=None))
    model = ModelArrays.from_llm(CATALOG.get("llms", "llama2-7b"))
    b, s, micro_batches = 2.0, 4096.0, 3.0
    plan = PlanArrays(
        global_batch_size=8.0 * b * micro_batches,
        micro_batch_size=b,
        sequence_length=s,
        data_parallel=8.0,
        zero_stage=1.0,
        tensor_parallel=1.0,
        pipeline_parallel=1.0,
        flash_attention=1.0,
    )
    pair_run, forward_run = (evaluate_plans(model=model, cluster=c, plan=plan) for c in (cluster, without))
    np.testing.assert_array_equal(pair_run.time_forward_s, forward_run.time_forward_s)
    forward = device.prefill_attention_time_s(b, 32.0, s, s, 128.0, causal=True)
    pair = device.attention_fwd_bwd_time_s(b, 32.0, s, s, 128.0, causal=True)
    assert forward is not None and pair is not None
    backward_per_layer = (pair.time_s - forward.time_s) * 2.0 / 2.5 - 2.0 * forward.time_s
    assert backward_per_layer > 0  # FlashAttention-2's backward runs below its forward rate on H100
    np.testing.assert_allclose(
        np.asarray(pair_run.time_backward_s) - np.asarray(forward_run.time_backward_s),
        micro_batches * 32 * backward_per_layer,
        rtol=1e-9,
    )


def _llama_plan(recompute: Recompute = Recompute.NONE) -> PlanArrays:
    return PlanArrays(
        global_batch_size=16.0,
        micro_batch_size=2.0,
        sequence_length=4096.0,
        data_parallel=8.0,
        tensor_parallel=1.0,
        pipeline_parallel=1.0,
        zero_stage=3.0,
        recompute=recompute,
        flash_attention=1.0,
    )


def test_eager_layer_traffic_counts_each_op_of_a_llama_layer():
    """Llama 3 8B shape per token: two fp32-upcast RMSNorms (36 bytes each) and residual adds (6) over h, silu and
    gate product (10) over f, rotary on Q and K (20), K and V repeated to every head (2 x (2 kv + 2 h))."""
    h, f, kv = 4096.0, 14336.0, 1024.0
    traffic, kernels = eager_layer_traffic(
        sequence_length=8192.0, micro_batch_size=2.0, hidden_size=h, num_heads=32.0, num_kv_heads=8.0,
        ffn_hidden_size=f, gated_ffn=1.0, rms_norm=1.0, rotary=1.0, tensor_parallel=1.0, context=1.0,
    )  # fmt: skip
    per_token = 2 * (36 + 6) * h + 10 * f + 20 * (h + kv) + 2 * (2 * kv + 2 * h)
    assert float(traffic) == 2 * 8192 * per_token
    assert float(kernels) == 2 * 8 + 2 + 2 + 6 + 2
    # a GPT layer (LayerNorm, GELU, learned positions, every head its own K/V): 2 x (4 + 6) per h, 4 per f
    traffic, kernels = eager_layer_traffic(
        sequence_length=2048.0, micro_batch_size=1.0, hidden_size=h, num_heads=32.0, num_kv_heads=32.0,
        ffn_hidden_size=4 * h, gated_ffn=0.0, rms_norm=0.0, rotary=0.0, tensor_parallel=1.0, context=1.0,
    )  # fmt: skip
    assert float(traffic) == 2048 * (2 * (4 + 6) * h + 4 * 4 * h) and float(kernels) == 2 + 2 + 1


def test_every_other_matmul_recomputes_k_o_and_w3_of_a_gated_layer():
    """torchtitan's per-op policy over q, k, v, o, w1, w3, w2: the K third of QKV (by width), all of the projection,
    the w3 half of the fused gate/up GEMM, none of w2; without a gate: k, o and the FFN-out."""
    shares = every_other_matmul_shares(hidden_size=4096.0, kv_width=1024.0, gated_ffn=1.0)
    assert [float(x) for x in shares] == [1024.0 / 6144.0, 1.0, 0.5, 0.0]
    shares = every_other_matmul_shares(hidden_size=4096.0, kv_width=4096.0, gated_ffn=0.0)
    assert [float(x) for x in shares] == [1.0 / 3.0, 1.0, 0.0, 1.0]


def test_torchtitan_stack_prices_eager_ops_per_op_recomputation_and_an_unfused_adamw():
    model = ModelArrays.from_llm(CATALOG.get("llms", "llama3.1-8b"))
    assert float(model.rms_norm) == 1.0 and float(model.rotary) == 1.0
    eager, fused = h100_node("bf16", "pytorch-fsdp"), h100_node("bf16", "megatron-core-te")
    run = {name: evaluate_plans(model=model, cluster=c, plan=_llama_plan()) for name, c in (("e", eager), ("f", fused))}
    assert float(run["e"].time_forward_s) > float(run["f"].time_forward_s)  # fp32 RMSNorm, rotary, unfused SwiGLU
    # the optimizer streams the stack's 92 bytes per updated parameter instead of a fused Adam's 28
    stack = CATALOG.get("stacks", "pytorch-fsdp")
    assert stack.optimizer_step_bytes_per_param == 92.0
    np.testing.assert_allclose(
        float(run["e"].time_optimizer_s) / float(run["f"].time_optimizer_s), 92.0 / 28.0, rtol=1e-12
    )
    # selective recomputation: nothing beyond FlashAttention's own under Megatron, every other matmul under torchtitan
    for name, c in (("e", eager), ("f", fused)):
        selective = evaluate_plans(model=model, cluster=c, plan=_llama_plan(Recompute.SELECTIVE))
        extra = float(selective.time_recompute_s) - float(run[name].time_recompute_s)
        assert (extra > 0) if name == "e" else (extra == 0)
