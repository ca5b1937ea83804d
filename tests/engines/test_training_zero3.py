"""ZeRO-3 gathers per layer and micro-batch, the bucketed data-parallel gradient reduce, the memory reserve.

Engine behaviour at the granularity the runtimes use (DeepSpeed ZeRO-3 / PyTorch FSDP: one all-gather of
a layer's parameters in forward, again in backward and when recomputing, one reduce-scatter of its
gradients; PyTorch DDP / Megatron-LM: 25 MB gradient buckets). Exact relations are tested exactly
(rel 1e-9); the GPT-3 175B numbers are hand-computed from the ring formulas of engines/collectives.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from dse.catalog.loader import default_catalog
from dse.engines.training.evaluate import GRADIENT_BUCKET_BYTES
from dse.engines.training.memory import memory_reserve_bytes
from dse.scenarios.documents import evaluate_document, parse_document

A100 = {"accelerator": "a100-80gb", "intra_node_link": "nvlink3", "inter_node_link": "ib-hdr"}
H = 12288.0
LAYER_PARAMS = 12.0 * H * H + 13.0 * H  # GPT-3 175B layer: QKV, projection, FFN weights and biases, 2 LayerNorms
IB_STEP_S = 6.6e-6  # models_db/interconnects/ib-hdr.json (NCCL tuning.cc ring step)
RING_BW = 8 * 25e9  # 8 ranks per node share the node's 8 HDR ports (engines/training/links.py)


def metrics(**inputs: Any) -> dict[str, Any]:
    nodes = inputs.pop("nodes")
    doc = {
        "schema_version": 1,
        "kind": "training",
        "name": "t",
        "inputs": {"model": "gpt3-175b", "cluster": {**A100, "nodes": nodes}, **inputs},
    }
    result = evaluate_document(parse_document(doc), default_catalog())
    return {m.key: m.value for m in result.metrics}


def zero3_dp_only(**extra: Any) -> dict[str, Any]:
    plan = {"global_batch_size": 1536, "micro_batch_size": 1, "data_parallel": 1536, "zero_stage": 3}
    return metrics(nodes=192, recompute="full", **{**plan, **extra})


def test_zero3_dp_only_1536_gpus_exposes_each_pass_first_gather():
    """Prefetch depth 1 cannot hide a pass's first gather nor the backward's last reduce-scatter: with
    1,535 ring steps of 6.6 us each and 3.6 GB per layer, at least three layer collectives show."""
    n = 1536.0
    layer_collective = (n - 1.0) / n * 2.0 * LAYER_PARAMS / RING_BW + (n - 1.0) * IB_STEP_S
    exposed = zero3_dp_only()["time_zero_gather_s"]
    assert exposed >= 3.0 * layer_collective
    assert exposed < 96.0 * layer_collective  # the rest overlaps the layers' compute


def test_zero3_without_overlap_pays_every_collective_and_regathers_per_micro_batch():
    """No overlap: every layer gathers twice (three times with full recomputation) and reduce-scatters
    once per micro-batch; twice the micro-batches, twice the gathers (no caching across them)."""
    one = zero3_dp_only(overlap_grad_reduce=False)
    two = zero3_dp_only(overlap_grad_reduce=False, global_batch_size=3072)
    assert two["time_zero_gather_s"] == pytest.approx(2.0 * one["time_zero_gather_s"], rel=1e-9)
    n = 1536.0
    layer_collective = (n - 1.0) / n * 2.0 * LAYER_PARAMS / RING_BW + (n - 1.0) * IB_STEP_S
    assert one["time_zero_gather_s"] >= 96.0 * 4.0 * layer_collective
    assert one["time_zero_gather_s"] > zero3_dp_only()["time_zero_gather_s"]
    assert one["time_data_parallel_s"] == 0.0  # the reduce-scatters are counted per layer


def test_data_parallel_reduce_leaves_at_least_one_bucket_exposed():
    """ZeRO-1 on 64 replicas of TP 8 x PP 2: the gradients reduce in 25 MB buckets during the last
    micro-batch's backward; the last bucket cannot overlap."""
    out = metrics(
        nodes=128,
        global_batch_size=1536,
        micro_batch_size=1,
        data_parallel=64,
        tensor_parallel=8,
        pipeline_parallel=2,
        zero_stage=1,
        recompute="full",
    )
    d = 64.0
    bucket = 2.0 * (d - 1.0) / d * GRADIENT_BUCKET_BYTES / 25e9 + 2.0 * (d - 1.0) * IB_STEP_S
    assert out["time_data_parallel_s"] >= bucket * (1.0 - 1e-3)


def test_fits_means_fits_after_the_reserve():
    """Headroom is the capacity less the reserve (context, NCCL buffers, fragmentation) less the peak."""
    out = zero3_dp_only()
    capacity = 80.0 * 2**30  # models_db/accelerators/a100-80gb.json
    reserve = float(memory_reserve_bytes(capacity))
    assert 4.0 * 2**30 < reserve < 8.0 * 2**30  # a few GiB on an 80 GB part
    assert out["memory_headroom_bytes"] == pytest.approx(capacity - reserve - out["memory_total_bytes"], rel=1e-9)
    assert out["fits"] == (out["memory_headroom_bytes"] >= 0.0)
