"""Training compute priced op by op: each GEMM by its own shape (forward, data and weight gradients), element-wise
launches by the stack, fp8 GEMMs on the fp8 kernel curve with their casts and fp8 weight copies."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.catalog.calibration import load_fits
from dse.engines.training import ModelArrays, PlanArrays, SequenceParallel, evaluate_plans
from dse.engines.training.compute import Gemm, gemm_pass_times, unfused_layer_kernels
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
