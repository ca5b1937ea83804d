"""ZeRO-3 gathers per layer and micro-batch, the bucketed data-parallel gradient reduce, the memory reserve.

Engine behaviour at the granularity the runtimes use (DeepSpeed ZeRO-3 / PyTorch FSDP: one all-gather of
a layer's parameters in forward, again in backward and when recomputing, one reduce-scatter of its
gradients; PyTorch DDP / Megatron-LM: 25 MB gradient buckets). Exact relations are tested exactly
(rel 1e-9); the GPT-3 175B numbers are hand-computed from the ring formulas of engines/collectives.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dse.catalog.loader import default_catalog
from dse.engines.device import memory_reserve_bytes
from dse.engines.training.codes import Zero3Runtime
from dse.engines.training.evaluate import GRADIENT_BUCKET_BYTES
from dse.engines.training.zero3 import compute_stream_copies
from dse.scenarios.documents import parse_document
from dse.scenarios.registry import KINDS

A100 = {"accelerator": "a100-80gb", "intra_node_link": "nvlink3", "inter_node_link": "ib-hdr"}
H = 12288.0
LAYER_PARAMS = 12.0 * H * H + 13.0 * H  # GPT-3 175B layer: QKV, projection, FFN weights and biases, 2 LayerNorms
IB_STEP_S = 6.0e-6  # a lower bound of a multi-node ring step on DGX A100: NCCL's AMD-host proxy overhead (ib-hdr.json)
RING_BW = 8 * 0.9 * 25e9  # 8 ranks per node share the node's 8 HDR ports at 0.9 (ib-hdr.json; training/links.py)


def ring_step_s(ranks: float, nodes: float) -> float:
    """NCCL's mean ring step over nodes on DGX A100: 6 us inside a node (proxy overhead), 14 us across (ib-hdr.json)."""
    return 6e-6 + (14e-6 - 6e-6) * (nodes - 1.0) / (ranks - 1.0)


def metrics(**inputs: Any) -> dict[str, Any]:
    nodes = inputs.pop("nodes")
    model = inputs.pop("model_override", "gpt3-175b")
    doc = {
        "schema_version": 1,
        "kind": "training",
        "name": "t",
        "inputs": {"model": model, "cluster": {**A100, "nodes": nodes}, **inputs},
    }
    training = KINDS["training"]
    # The quick answer: the same metrics without the deferred studies (a replayed timeline, a sequence-length
    # grid), ~90% of a whole answer's time; tests/scenarios/test_every_kind.py evaluates the studies.
    result = training.evaluate_quick(training.resolve(parse_document(doc).inputs, default_catalog()))
    return {m.key: m.value for m in result.metrics}


def zero3_dp_only(**extra: Any) -> dict[str, Any]:
    plan = {"global_batch_size": 1536, "micro_batch_size": 1, "data_parallel": 1536, "zero_stage": 3}
    return metrics(nodes=192, recompute="full", **{**plan, **extra})


def test_zero3_dp_only_1536_gpus_exposes_each_pass_first_gather():
    """Prefetch depth 1 cannot hide a pass's first gather nor the backward's last reduce-scatter: with
    1,535 ring steps of at least 6 us each and 3.6 GB per layer, at least three layer collectives show."""
    n = 1536.0
    layer_collective = (n - 1.0) / n * 2.0 * LAYER_PARAMS / RING_BW + (n - 1.0) * IB_STEP_S
    exposed = zero3_dp_only()["time_zero_gather_s"]
    assert exposed >= 3.0 * layer_collective
    assert exposed < 96.0 * layer_collective  # the rest overlaps the layers' compute


def test_zero3_without_overlap_pays_every_collective_and_regathers_per_micro_batch():
    """No overlap: every layer gathers twice (FSDP wraps the checkpointed layer: its backward gather serves the
    full recomputation too) and reduce-scatters once per micro-batch; twice the micro-batches, twice the gathers
    (no caching across them)."""
    one = zero3_dp_only(overlap_grad_reduce=False)
    two = zero3_dp_only(overlap_grad_reduce=False, global_batch_size=3072)
    assert two["time_zero_gather_s"] == pytest.approx(2.0 * one["time_zero_gather_s"], rel=1e-9)
    n = 1536.0
    layer_collective = (n - 1.0) / n * 2.0 * LAYER_PARAMS / RING_BW + (n - 1.0) * IB_STEP_S
    assert one["time_zero_gather_s"] >= 96.0 * 3.0 * layer_collective
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


def test_deepspeed_2021_issues_one_list_collective_per_weight_tensor():
    """Without overlap the DeepSpeed-2021 runtime pays, per layer, 4 gathers (QKV, projection, FFN in, FFN out)
    per pass and ceil(P / 5e8) reduce-scatter buckets, each a ring over the group plus one eager copy per rank."""
    import json
    from pathlib import Path

    import numpy as np

    from dse.engines.collectives import all_gather_time, reduce_scatter_time
    from dse.engines.training.zero3 import EAGER_OP_HOST_S, zero3_exposed_s

    stack = json.loads(Path("models_db/stacks/pytorch-eager.json").read_text())
    assert stack["elementwise_launch_overhead_s"] == EAGER_OP_HOST_S  # one number, two places: kept equal
    n, bw, lat, P = 1536.0, 200e9, 6.6e-6, LAYER_PARAMS
    out = zero3_exposed_s(
        runtime=1.0,
        layers=96.0,
        layer_params=P,
        largest_tensor_params=4.0 * H * H,
        rest_params=0.0,
        zero_group=n,
        bandwidth_bytes_per_s=bw,
        latency_s=lat,
        forward_layer_s=0.01,
        backward_layer_s=0.02,
        full_recompute=1.0,
        overlap=0.0,
    )
    copies = n * EAGER_OP_HOST_S
    ag = 4.0 * (
        all_gather_time(bytes_per_rank=2.0 * P / 4.0, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat) + copies
    )
    buckets = np.ceil(P / 5e8)
    rs = buckets * (
        reduce_scatter_time(bytes_per_rank=2.0 * P / buckets, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat) + copies
    )
    rest = 2.0 * all_gather_time(bytes_per_rank=0.0, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)
    rest += reduce_scatter_time(bytes_per_rank=0.0, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat) + 3.0 * copies
    assert float(out) == pytest.approx(96.0 * (3.0 * ag + rs) + rest, rel=1e-12)


def test_deepspeed_2021_zero3_slows_as_gpus_double_and_fsdp_hides_its_gathers():
    """Narayanan Table 2 setting (GPT-3 175B, batch 1536, data-parallel only): the 2021 DeepSpeed runtime's
    TFLOP/s per GPU falls as the GPUs double (its per-tensor gathers pay n-1 ring steps and n copies each);
    FSDP's one prefetched gather per layer stays hidden under the compute at the same scale."""
    ds = [
        metrics(
            nodes=g // 8,
            global_batch_size=1536,
            micro_batch_size=1536 // g,
            data_parallel=g,
            zero_stage=3,
            recompute="full",
            zero3_runtime="deepspeed-2021",
        )
        for g in (384, 768, 1536)
    ]
    tflops = [m["achieved_flops_per_gpu"] for m in ds]
    assert tflops[0] > tflops[1] > tflops[2]
    assert tflops[1] / tflops[2] > 1.8  # the iteration time barely falls from 768 to 1536 GPUs
    fsdp = zero3_dp_only()
    # the collectives hide; FSDP2's copy-out and reduce-scatter copy-in on the compute stream (14 bytes per parameter
    # and micro-batch, ~11% here at one 2048-token sequence per GPU) do not
    assert fsdp["time_zero_gather_s"] < 0.15 * fsdp["iteration_time_s"]
    assert ds[2]["time_zero_gather_s"] > 0.5 * ds[2]["iteration_time_s"]
    assert ds[2]["memory_buffers_bytes"] < fsdp["memory_buffers_bytes"]  # at most 1e9 live parameters


def test_tp_comm_overlap_hides_tiles_under_the_gemms():
    """Megatron --tp-comm-overlap (Calculon's ring overlap): with t tiles, a collective whose tile fits under
    its GEMM tile adds only the compute it takes, (t-1) x tile x 0.15; TP time falls, nothing else changes."""
    plan = {
        "global_batch_size": 1536,
        "micro_batch_size": 1,
        "data_parallel": 8,
        "tensor_parallel": 8,
        "pipeline_parallel": 16,
        "zero_stage": 1,
        "recompute": "full",
    }
    off = metrics(nodes=128, **plan)
    on = metrics(nodes=128, tp_comm_overlap=True, **plan)
    assert on["time_tensor_parallel_s"] < 0.3 * off["time_tensor_parallel_s"]
    assert on["time_forward_s"] == off["time_forward_s"]
    assert on["iteration_time_s"] < off["iteration_time_s"]
    # hidden everywhere here: each of the 6 collectives per layer (2 forward, 2 recompute, 2 backward) adds
    # (t-1)/t x 0.15 of its time
    assert on["time_tensor_parallel_s"] == pytest.approx(7.0 / 8.0 * 0.15 * off["time_tensor_parallel_s"], rel=1e-9)


def test_plain_all_reduce_takes_nccl_s_tree_across_many_nodes():
    """Megatron GPT 1.7B data-parallel over 1,024 A100s, no overlap: a plain all-reduce (ZeRO-0) of each
    25 MB bucket runs as NCCL's tree (28 hops instead of 2 x 1023 ring steps of 6-14 us); the distributed
    optimizer (ZeRO-1) reduce-scatters in Megatron's buckets of max(4e7, 1e6 x 1024) parameters, here one
    bucket without overlap, so it pays the ring's latency once. Gradients are the default stack's fp32 under
    bf16 (4 bytes), the all-gathered weights 2: ZeRO-1 moves 3 bytes per parameter in all-reduce terms."""
    import math

    doc = {"global_batch_size": 1024, "micro_batch_size": 1, "data_parallel": 1024, "overlap_grad_reduce": False}
    zero0 = metrics(nodes=128, model_override="megatron-gpt-1.7b", zero_stage=0, **doc)
    zero1 = metrics(nodes=128, model_override="megatron-gpt-1.7b", zero_stage=1, **doc)
    gradient_bytes, weight_bytes = 4.0, 2.0
    buckets = math.ceil(gradient_bytes * 1.7e9 / GRADIENT_BUCKET_BYTES)
    ring_latency_only = buckets * 2.0 * 1023.0 * IB_STEP_S
    assert zero0["time_data_parallel_s"] < 0.1 * ring_latency_only
    sync_bytes = 0.5 * (gradient_bytes + weight_bytes)
    one_bucket = 2.0 * 1023.0 / 1024.0 * sync_bytes * 1.7e9 / RING_BW + 2.0 * 1023.0 * ring_step_s(1024.0, 128.0)
    assert zero1["time_data_parallel_s"] == pytest.approx(one_bucket, rel=0.05)  # 1.7e9: the preset's rounding


def test_composer_fsdp_waits_for_every_backward_gather_and_gathers_once_for_recomputation():
    """BACKWARD_POST issues a layer's backward gather only after the previous layer's gradients: each waits in line
    (the forward stays prefetched); recomputation runs inside the unit, on the same gather; the reduce-scatters
    overlap the next layer's backward. Default FSDP (prefetched) hides the same gathers entirely."""
    from dse.engines.collectives import all_gather_time, reduce_scatter_time
    from dse.engines.training.codes import Zero3Runtime
    from dse.engines.training.zero3 import zero3_exposed_s

    n, bw, lat, P, L = 8.0, 300e9, 5.7e-6, 2e8, 32.0
    common = dict(
        layers=L, layer_params=P, largest_tensor_params=P / 3, rest_params=0.0, zero_group=n,
        bandwidth_bytes_per_s=bw, latency_s=lat, forward_layer_s=0.01, backward_layer_s=0.02, full_recompute=1.0,
    )  # fmt: skip
    ag = all_gather_time(bytes_per_rank=2.0 * P, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)
    rs = reduce_scatter_time(bytes_per_rank=2.0 * P, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)
    rest = 2.0 * all_gather_time(bytes_per_rank=0.0, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)
    rest += reduce_scatter_time(bytes_per_rank=0.0, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)
    composer = zero3_exposed_s(runtime=float(Zero3Runtime.FSDP_COMPOSER), overlap=1.0, **common)
    assert float(composer) == pytest.approx(ag + L * ag + rs + rest, rel=1e-12)  # gathers and RS fit their windows
    fsdp = zero3_exposed_s(runtime=float(Zero3Runtime.FSDP), overlap=1.0, **common)
    rs32 = reduce_scatter_time(bytes_per_rank=4.0 * P, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)
    assert float(fsdp) == pytest.approx(2.0 * ag + rs32 + rest, rel=1e-12)  # torchtitan's FSDP reduces in fp32
    serial = zero3_exposed_s(runtime=float(Zero3Runtime.FSDP_COMPOSER), overlap=0.0, **common)
    assert float(serial) == pytest.approx(L * (2.0 * ag + rs) + rest, rel=1e-12)


def test_fairscale_2021_runs_each_backward_gather_after_the_previous_reduce_scatter():
    """FairScale FSDP of 2021 puts gathers and reduce-scatters on one communicator: in the backward each layer's
    reduce-scatter and the next layer's gather run in series with its compute (however long the backward), the
    forward gathers stay prefetched, and one backward gather serves the recomputation."""
    from dse.engines.collectives import all_gather_time, reduce_scatter_time
    from dse.engines.training.codes import Zero3Runtime
    from dse.engines.training.zero3 import zero3_exposed_s

    n, bw, lat, P, L = 124.0, 22.5e9, 14e-6, 2.26e8, 96.0
    common = dict(
        layers=L, layer_params=P, largest_tensor_params=P / 3, rest_params=0.0, zero_group=n,
        bandwidth_bytes_per_s=bw, latency_s=lat, forward_layer_s=0.04, backward_layer_s=1.0, full_recompute=1.0,
    )  # fmt: skip
    ag = all_gather_time(bytes_per_rank=2.0 * P, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)
    rs = reduce_scatter_time(bytes_per_rank=2.0 * P, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)
    rest = 2.0 * all_gather_time(bytes_per_rank=0.0, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)
    rest += reduce_scatter_time(bytes_per_rank=0.0, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)
    fairscale = zero3_exposed_s(runtime=float(Zero3Runtime.FAIRSCALE_2021), overlap=1.0, **common)
    assert float(ag) < 0.04  # the forward hides every gather but the first
    assert float(fairscale) == pytest.approx(ag + L * (ag + rs) + rest, rel=1e-12)
    composer = zero3_exposed_s(runtime=float(Zero3Runtime.FSDP_COMPOSER), overlap=1.0, **common)
    assert float(fairscale) - float(composer) == pytest.approx(L * rs - rs, rel=1e-9)  # composer hides all RS but one
    serial = zero3_exposed_s(runtime=float(Zero3Runtime.FAIRSCALE_2021), overlap=0.0, **common)
    assert float(serial) == pytest.approx(L * (2.0 * ag + rs) + rest, rel=1e-12)
    fsdp_serial = zero3_exposed_s(runtime=float(Zero3Runtime.FSDP), overlap=0.0, **common)
    rs32 = reduce_scatter_time(bytes_per_rank=4.0 * P, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)
    assert float(fsdp_serial) == pytest.approx(L * (2.0 * ag + rs32) + rest, rel=1e-12)  # no regather to recompute


def _selene_cluster(nodes: float) -> Any:
    from dse.scenarios.kinds.training.published import cluster

    return cluster(default_catalog(), nodes)


def test_ring_across_nodes_pays_the_network_latency_on_its_network_steps_only():
    """NCCL's ring model (tuning.cc @ b6475625f): a ring of n ranks over N nodes has N-1 network steps at
    14 us; its other steps pay the NVLink step (3.4 us) but at least the host proxy overhead (6 us on DGX
    A100's AMD hosts). Inside a node a ring pays NVLink's 3.4 us per step; all-to-all and pipeline sends that
    cross nodes pay 14 us."""
    from dse.engines.training.links import group_link

    selene = _selene_cluster(128.0)
    ring = group_link(cluster=selene, stride=4.0, size=256.0, pattern="ring")  # 2 ranks per node, 128 nodes
    assert float(ring.latency_s) == pytest.approx(6e-6 + (14e-6 - 6e-6) * 127.0 / 255.0, rel=1e-12)
    inside = group_link(cluster=selene, stride=1.0, size=8.0, pattern="ring")
    assert float(inside.latency_s) == pytest.approx(3.4e-6, rel=1e-12)
    one_per_node = group_link(cluster=selene, stride=8.0, size=16.0, pattern="ring")
    assert float(one_per_node.latency_s) == pytest.approx(14e-6, rel=1e-12)  # every step crosses
    for pattern in ("all_to_all", "p2p"):
        assert float(group_link(cluster=selene, stride=4.0, size=4.0, pattern=pattern).latency_s) == 14e-6


def test_network_and_a100_nvlink_run_at_their_sourced_bus_bandwidth():
    """HDR ports at 0.9 of 25 GB/s (Calculon's InfiniBand efficiency), A100 NVLink at NCCL's 235 GB/s cap;
    a ring over 8 ranks per node runs at min(NVLink, 8 network shares)."""
    from dse.engines.training.links import group_link

    selene = _selene_cluster(128.0)
    assert float(selene.inter_node_bandwidth_per_gpu_bytes_per_s) == pytest.approx(0.9 * 25e9, rel=1e-12)
    assert float(selene.intra_node_bandwidth_bytes_per_s) == pytest.approx(0.7833 * 300e9, rel=1e-12)
    ring = group_link(cluster=selene, stride=1.0, size=1024.0, pattern="ring")
    assert float(ring.bandwidth_bytes_per_s) == pytest.approx(8.0 * 0.9 * 25e9, rel=1e-12)


def test_hidden_zero3_collectives_take_their_compute_share():
    """FSDP, prefetched: each further layer adds max(comm - compute, share x comm) per pass (Calculon's
    overlap rule); with a share of 0 the hidden collectives cost nothing, with the share they cost exactly it."""
    from dse.engines.collectives import all_gather_time, reduce_scatter_time
    from dse.engines.training.zero3 import zero3_exposed_s

    n, bw, lat, P, L = 256.0, 45e9, 1e-5, LAYER_PARAMS / 4.0, 96.0
    fwd, bwd, share = 0.05, 0.10, 0.02  # compute well above the collectives: everything hides
    common: dict[str, Any] = dict(
        runtime=0.0,
        layers=L,
        layer_params=P,
        largest_tensor_params=P,
        rest_params=0.0,
        zero_group=n,
        bandwidth_bytes_per_s=bw,
        latency_s=lat,
        forward_layer_s=fwd,
        backward_layer_s=bwd,
        full_recompute=0.0,
        overlap=1.0,
    )
    ag = all_gather_time(bytes_per_rank=2.0 * P, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)
    rs = reduce_scatter_time(bytes_per_rank=4.0 * P, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)  # fp32
    rest = 3.0 * all_gather_time(bytes_per_rank=0.0, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat)
    free = float(zero3_exposed_s(**common))
    assert free == pytest.approx(2.0 * ag + rs + rest, rel=1e-12)  # only each pass's first / last collective
    shared = float(zero3_exposed_s(**common, compute_share=share))
    assert shared == pytest.approx(free + (L - 1.0) * share * (ag + ag + rs), rel=1e-12)


def test_fsdp_holds_a_layer_s_unsharded_gradient_while_it_reduce_scatters():
    """FSDP frees a layer's whole gradient only after its reduce-scatter: one layer's gradient (in the reduce
    dtype: fp32 for torchtitan's FSDP, 4 bytes per parameter) more in the buffers than the two gathered layers;
    DeepSpeed's list runtime does not add it."""
    from dse.engines.training.zero3 import reduce_bytes_per_param, unsharded_gradient_params

    assert float(unsharded_gradient_params(runtime=0.0, layer_params=LAYER_PARAMS)) == LAYER_PARAMS
    assert float(unsharded_gradient_params(runtime=1.0, layer_params=LAYER_PARAMS)) == 0.0
    assert float(reduce_bytes_per_param(0.0)) == 4.0


def test_fsdp_reduce_scatters_fp32_gradients_and_the_2021_runtimes_low_precision_ones():
    """torchtitan's FSDP reduces in fp32 (mixed_precision_reduce "float32"): its reduce-scatter moves 4 bytes per
    parameter, twice the 2 bytes it gathers; DeepSpeed, FairScale and Composer keep 2. On the GPT-3 175B layer of
    a dp 256 x TP 4 plan over 128 HDR nodes (45 GB/s per rank) the backward's gather + fp32 reduce-scatter
    (~68 ms) outlasts the layer's backward (~51 ms), so FSDP's ZeRO-3 stops hiding: what the backward exposes is
    exactly (L-1)(ag + rs - bwd)."""
    from dse.engines.collectives import all_gather_time, reduce_scatter_time
    from dse.engines.training.codes import Zero3Runtime
    from dse.engines.training.zero3 import reduce_bytes_per_param, zero3_exposed_s

    assert [float(reduce_bytes_per_param(float(r))) for r in Zero3Runtime] == [4.0, 2.0, 2.0, 2.0]
    n, bw, lat, P, L, fwd, bwd = 256.0, 45e9, 9.984e-6, LAYER_PARAMS / 4.0, 96.0, 0.0252, 0.0507
    common: dict[str, Any] = dict(
        layers=L, layer_params=P, largest_tensor_params=P / 3, rest_params=0.0, zero_group=n, bandwidth_bytes_per_s=bw,
        latency_s=lat, forward_layer_s=fwd, backward_layer_s=bwd, full_recompute=0.0, overlap=1.0,
    )  # fmt: skip
    ag = float(all_gather_time(bytes_per_rank=2.0 * P, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat))
    rs = float(reduce_scatter_time(bytes_per_rank=4.0 * P, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat))
    assert ag < fwd and ag + rs > bwd
    rest = 3.0 * float(all_gather_time(bytes_per_rank=0.0, ranks=n, bandwidth_bytes_per_s=bw, latency_s=lat))
    fsdp = float(zero3_exposed_s(runtime=float(Zero3Runtime.FSDP), **common))
    assert fsdp == pytest.approx(2.0 * ag + rs + (L - 1.0) * (ag + rs - bwd) + rest, rel=1e-12)


def test_compute_stream_copies_per_runtime():
    """Bytes and kernels of a runtime's compute-stream copies per micro-batch, exactly: FSDP2 copies out each of its
    two gathers (2 + 2 bytes per parameter) and chunk_cats the bf16 gradients into its fp32 reduce-scatter input
    (2 + 4), three kernels per unit; FSDP1 concatenates the flat parameter's bf16 gradients (2 + 2), one kernel;
    DeepSpeed and FairScale none. The rest of the stage's parameters are one more unit."""
    runtimes = np.array(
        [Zero3Runtime.FSDP, Zero3Runtime.FSDP_COMPOSER, Zero3Runtime.DEEPSPEED_2021, Zero3Runtime.FAIRSCALE_2021],
        dtype=float,
    )
    bytes_moved, kernels = compute_stream_copies(runtime=runtimes, layers=32.0, layer_params=2e8, rest_params=1e9)
    params = 32.0 * 2e8 + 1e9
    assert bytes_moved.tolist() == pytest.approx([14.0 * params, 4.0 * params, 0.0, 0.0], rel=1e-12)
    assert kernels.tolist() == [3.0 * 33.0, 33.0, 0.0, 0.0]
    _, no_rest = compute_stream_copies(runtime=runtimes[:1], layers=32.0, layer_params=2e8, rest_params=0.0)
    assert no_rest.tolist() == [96.0]
