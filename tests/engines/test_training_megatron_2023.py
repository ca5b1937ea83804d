"""Megatron-LM as of January 2023 (commit 285068c8, MegaScale's baseline): gradients reduce in fp32 under bf16 and
only after the whole backward, whatever the plan asks; the default stack keeps its bf16 reduction and its overlap."""

from __future__ import annotations

import dataclasses

import numpy as np

from dse.catalog import default_catalog
from dse.engines.training import ClusterArrays, ModelArrays, PlanArrays, evaluate_plans
from dse.scenarios.kinds.training.published import cluster

CATALOG = default_catalog()
MODEL = ModelArrays.gpt(hidden_size=8192.0, num_layers=8.0, num_heads=64.0, vocab_size=51200.0, sequence_length=2048.0)


def _plan(zero: float, overlap: float) -> PlanArrays:
    # data parallel over 4 nodes, no pipeline (no tied-embedding all-reduce between stages)
    return PlanArrays(
        global_batch_size=64.0,
        micro_batch_size=1.0,
        sequence_length=2048.0,
        data_parallel=4.0,
        tensor_parallel=8.0,
        pipeline_parallel=1.0,
        zero_stage=zero,
        overlap_grad_reduce=overlap,
    )


def _with_stack(base: ClusterArrays, **fields: object) -> ClusterArrays:
    assert base.device.stack is not None
    device = dataclasses.replace(base.device, stack=dataclasses.replace(base.device.stack, **fields))
    return dataclasses.replace(base, device=device)


def _dp_s(arrays: ClusterArrays, zero: float, overlap: float) -> float:
    return float(evaluate_plans(model=MODEL, cluster=arrays, plan=_plan(zero, overlap)).time_data_parallel_s)


def test_the_2023_stack_reduces_fp32_gradients_after_the_whole_backward():
    stack = CATALOG.get("stacks", "megatron-lm-2023")
    assert stack.gradient_reduce_bytes_per_param == {"bf16": 4.0} and not stack.overlaps_gradient_reduce
    old = cluster(CATALOG, 4.0, stack="megatron-lm-2023")
    assert old.gradient_reduce_bytes_per_param == 4.0
    # fp16 gradients reduce in fp16 (accumulate_allreduce_grads_in_fp32 is forced only under bf16)
    assert cluster(CATALOG, 4.0, stack="megatron-lm-2023", dtype="fp16").gradient_reduce_bytes_per_param == 2.0
    # a plan asking for overlap gets none: the reduction waits for the backward
    for zero in (0.0, 1.0):
        assert _dp_s(old, zero, 1.0) == _dp_s(old, zero, 0.0)
    overlapping = _with_stack(old, overlaps_gradient_reduce=True)
    assert _dp_s(overlapping, 1.0, 1.0) < _dp_s(old, 1.0, 1.0)


def test_fp32_gradients_double_an_all_reduce_and_make_the_distributed_optimizer_sync_half_again():
    """ZeRO-0 all-reduces the 4-byte gradients (2 x the 2-byte traffic); ZeRO-1 reduce-scatters them and all-gathers
    2-byte weights (3 / 2 of it); the one bucket of an un-overlapped reduction leaves only a latency term apart."""
    fp32 = cluster(CATALOG, 4.0, stack="megatron-lm-2023")
    bf16 = dataclasses.replace(fp32, gradient_reduce_bytes_per_param=2.0)
    np.testing.assert_allclose(_dp_s(fp32, 1.0, 0.0) / _dp_s(bf16, 1.0, 0.0), 1.5, rtol=1e-3)
    np.testing.assert_allclose(_dp_s(fp32, 0.0, 0.0) / _dp_s(bf16, 0.0, 0.0), 2.0, rtol=1e-2)


def test_the_default_stack_keeps_fp32_gradients_under_bf16_and_overlaps_their_reduction():
    """Megatron-LM under --bf16 accumulates and reduces fp32 main gradients (unless --grad-reduce-in-bf16); fp16
    keeps 2-byte gradients; the default stack overlaps the reduction with the backward."""
    stack = CATALOG.get("stacks", "megatron-core-te")
    assert stack.gradient_reduce_bytes_per_param == {"bf16": 4.0} and stack.overlaps_gradient_reduce
    default = cluster(CATALOG, 4.0)
    assert default.gradient_reduce_bytes_per_param == 4.0
    assert cluster(CATALOG, 4.0, dtype="fp16").gradient_reduce_bytes_per_param == 2.0
    assert _dp_s(default, 1.0, 1.0) < _dp_s(default, 1.0, 0.0)


def test_the_gradient_buffer_is_as_wide_as_the_gradients_the_stack_reduces():
    """Megatron's fp32 main gradients take 4 bytes per parameter in memory (its distributed-optimizer guide: 'bf16
    parameters, fp32 gradients' 18 bytes per parameter, 6 + 12/d sharded), ZeRO-2 shards them."""
    fp32 = cluster(CATALOG, 4.0)
    bf16 = dataclasses.replace(fp32, gradient_reduce_bytes_per_param=2.0)
    for zero, shards in ((0.0, 1.0), (1.0, 1.0), (2.0, 4.0)):  # data parallel over 4
        wide = evaluate_plans(model=MODEL, cluster=fp32, plan=_plan(zero, 1.0))
        narrow = evaluate_plans(model=MODEL, cluster=bf16, plan=_plan(zero, 1.0))
        np.testing.assert_allclose(wide.memory_gradients_bytes, 2.0 * narrow.memory_gradients_bytes, rtol=1e-12)
        params = narrow.memory_weights_bytes / 2.0  # 2-byte weights, whole under ZeRO 0-2
        np.testing.assert_allclose(wide.memory_gradients_bytes, 4.0 * params / shards, rtol=1e-12)
