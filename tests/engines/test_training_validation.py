"""The training engine against published figures, with one calibration per accelerator.

The A100's only calibration is its preset's compute_efficiency (0.71) and memory_efficiency (0.746),
set from microsoft/vidur profiling data (shared/REFERENCE.md section 1); links are nominal datasheet
bandwidths. Nothing below is fitted to these tables.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.training import (
    ClusterArrays,
    ModelArrays,
    Offload,
    PlanArrays,
    Recompute,
    Schedule,
    SequenceParallel,
    evaluate_plans,
)
from dse.engines.training.offload import adaptive_offloaded_layers
from dse.specs.network import ClusterSpec

CATALOG = default_catalog()

# Narayanan et al. SC'21 Table 1 (A100 80 GB, seq 2048, vocab 51200, full recomputation): heads, hidden,
# layers, t, p, GPUs, global batch, achieved TFLOP/s per GPU; micro-batch, virtual stages (layers per
# virtual stage) and the DDP implementation (torch overlaps the gradient all-reduce, local does not)
# from NVIDIA/Megatron-LM examples/sc21/run_table_1.sh.
TABLE1 = [
    ("1.7B", 24, 2304, 24, 1, 1, 32, 512, 137, 16, 1, True),
    ("3.6B", 32, 3072, 30, 2, 1, 64, 512, 138, 16, 1, True),
    ("7.5B", 32, 4096, 36, 4, 1, 128, 512, 142, 16, 1, True),
    ("18.4B", 48, 6144, 40, 8, 1, 256, 1024, 135, 8, 1, True),
    ("39.1B", 64, 8192, 48, 8, 2, 512, 1536, 138, 4, 1, False),
    ("76.1B", 80, 10240, 60, 8, 4, 1024, 1792, 140, 2, 3, False),
    ("145.6B", 96, 12288, 80, 8, 8, 1536, 2304, 148, 2, 2, False),
    ("310.1B", 128, 16384, 96, 8, 16, 1920, 2160, 155, 1, 2, False),
    ("529.6B", 128, 20480, 105, 8, 35, 2520, 2520, 163, 1, 3, False),
    ("1008.0B", 160, 25600, 128, 8, 64, 3072, 3072, 163, 1, 1, False),
]


def selene(nodes, accelerator="a100-80gb"):
    """DGX A100 nodes: 8 GPUs on NVLink 3, 8 HDR InfiniBand ports (Narayanan et al. 2021, Section 5)."""
    spec = ClusterSpec(
        nodes=1,
        gpus_per_node=8,
        accelerator=CATALOG.get("accelerators", accelerator),
        intra_node_link=CATALOG.get("interconnects", "nvlink3"),
        inter_node_link=CATALOG.get("interconnects", "ib-hdr"),
        inter_node_links_per_node=8,
    )
    return dataclasses.replace(ClusterArrays.from_spec(spec), nodes=nodes)


def table1_evaluation():
    rows = np.array([r[1:] for r in TABLE1], dtype=float)
    heads, h, L, t, p, gpus, B, published, b, v, overlap = rows.T
    model = ModelArrays.gpt(hidden_size=h, num_layers=L, num_heads=heads, vocab_size=51200.0, sequence_length=2048.0)
    plan = PlanArrays(
        global_batch_size=B,
        micro_batch_size=b,
        sequence_length=2048.0,
        data_parallel=gpus / (t * p),
        tensor_parallel=t,
        pipeline_parallel=p,
        recompute=Recompute.FULL,
        pipeline_schedule=np.where(v > 1, Schedule.INTERLEAVED, Schedule.ONE_F_ONE_B),
        virtual_stages=v,
        overlap_grad_reduce=overlap,
    )
    return evaluate_plans(model=model, cluster=selene(gpus / 8), plan=plan), published, (B, L, h)


def test_narayanan_table1_all_rows_within_12_percent():
    """Narayanan et al. SC'21 Table 1, every row, evaluated in one vectorised call.

    Tolerance: each row within 12% and the mean absolute error under 8%. Why: the engine sees
    only nominal link bandwidths (NCCL's measured bus bandwidth is lower), no kernel launch gaps and a
    GEMM efficiency calibrated on inference GEMMs, so it is expected to be a few percent optimistic;
    the published rows themselves spread 44-52% of peak. Measured: +1.0% to +9.1%, mean 5.4%.
    """
    result, published, _ = table1_evaluation()
    assert np.all(result.valid) and np.all(result.fits)
    engine = result.achieved_flops_per_gpu / 1e12
    errors = engine / published - 1
    assert np.all(np.abs(errors) < 0.12), dict(zip([r[0] for r in TABLE1], np.round(errors, 3), strict=True))
    assert np.mean(np.abs(errors)) < 0.08


def test_narayanan_flop_count_is_exact():
    """Narayanan et al. 2021, eq. (3) with full recomputation: 96*B*s*L*h^2*(1 + s/(6h) + V/(16*L*h)); exact."""
    result, _, (B, L, h) = table1_evaluation()
    s, V = 2048.0, 51200.0
    expected = 96 * B * s * L * h**2 * (1 + s / (6 * h) + V / (16 * L * h))
    np.testing.assert_allclose(result.executed_flop_per_iteration, expected, rtol=1e-12)


def test_korthikanti_22b_layer_times_within_15_percent():
    """Korthikanti et al. 2022 Table 4: one 22B layer (h 6144, 64 heads, t 8, seq 2048; micro-batch 4, the
    22B configuration's batch in their Table 3 as recalled here, not re-checked in this environment) on
    A100s, forward / backward ms: baseline 7.7/11.9, sequence parallel 7.2/11.8, full recompute 7.7/19.5,
    selective 7.7/13.2, selective + SP 7.2/13.1.

    Tolerance 15% per figure (same calibration as Table 1; measured errors -7% .. +12%)."""
    model = ModelArrays.gpt(
        hidden_size=6144.0, num_layers=48.0, num_heads=64.0, vocab_size=51200.0, sequence_length=2048.0
    )
    sp = np.array([0, 1, 0, 0, 1], dtype=float)
    rc = np.array(
        [Recompute.NONE, Recompute.NONE, Recompute.FULL, Recompute.SELECTIVE, Recompute.SELECTIVE], dtype=float
    )
    plan = PlanArrays(
        global_batch_size=4.0,
        micro_batch_size=4.0,
        sequence_length=2048.0,
        data_parallel=1.0,
        tensor_parallel=8.0,
        pipeline_parallel=1.0,
        sequence_parallel=sp,
        recompute=rc,
    )
    result = evaluate_plans(model=model, cluster=selene(1.0), plan=plan)
    assert np.all(result.valid)
    forward_ms = result.chunk_forward_s / 48 * 1e3
    backward_ms = result.chunk_backward_s / 48 * 1e3  # backward + recomputation + their collectives
    np.testing.assert_allclose(forward_ms, [7.7, 7.2, 7.7, 7.7, 7.2], rtol=0.15)
    np.testing.assert_allclose(backward_ms, [11.9, 11.8, 19.5, 13.2, 13.1], rtol=0.15)
    # The orderings the paper reports: SP speeds up the forward pass; recomputation slows the backward.
    assert forward_ms[1] < forward_ms[0] and backward_ms[2] > backward_ms[3] > backward_ms[0]


def _layer_comm(kind, degree, s):
    model = ModelArrays.gpt(hidden_size=4096.0, num_layers=32.0, num_heads=64.0, vocab_size=51200.0, sequence_length=s)
    tp = degree if kind is None else 1.0
    plan = PlanArrays(
        global_batch_size=1.0,
        micro_batch_size=1.0,
        sequence_length=s,
        data_parallel=1.0,
        tensor_parallel=tp,
        pipeline_parallel=1.0,
        sequence_parallel=SequenceParallel.NONE if kind is None else kind,
        sequence_parallel_degree=1.0 if kind is None else degree,
    )
    cluster = dataclasses.replace(selene(1.0), nodes=degree / 8, gpus_per_node=8.0)
    result = evaluate_plans(model=model, cluster=cluster, plan=plan)
    assert np.all(result.valid)
    return result.sequence_parallel_bytes_per_layer if kind is not None else result.tensor_parallel_bytes_per_layer


def test_ulysses_volume_constant_when_sequence_and_degree_grow_together():
    """Jacobs et al. 2023 (DeepSpeed-Ulysses): per-device all-to-all volume ~4*b*s*h/N,
    constant when s and N grow together, while ring attention (Li et al. 2021) and TP volumes grow with s.

    Ulysses' bytes are exactly (N-1)/N * 2 bytes * b*(s/N)*(4h) (Q, K, V in, output out, MHA); the
    growth ratio from N=8 to N=64 is therefore (63/64)/(7/8) = 1.125 for Ulysses and 8x that for the others."""
    degrees = np.array([8.0, 16.0, 32.0, 64.0])
    s = 4096.0 * degrees
    ulysses = _layer_comm(SequenceParallel.ULYSSES, degrees, s)
    np.testing.assert_allclose(ulysses, (degrees - 1) / degrees * 2.0 * (s / degrees) * 4 * 4096.0, rtol=1e-12)
    ring = _layer_comm(SequenceParallel.RING, degrees, s)
    tensor = _layer_comm(None, degrees, s)
    assert ulysses[-1] / ulysses[0] == pytest.approx((63 / 64) / (7 / 8))
    assert ring[-1] / ring[0] == pytest.approx(8 * (63 / 64) / (7 / 8))
    assert tensor[-1] / tensor[0] == pytest.approx(8 * (63 / 64) / (7 / 8))


def test_ssdtrain_rule_closed_form_matches_the_literal_rule():
    """K-Wu/FlashTrain tensor_cache.py rule (shared/REFERENCE.md section 2): keep layer j and after at the
    first j with (sum_{i<j} A_i + 2*A_j) / (3*T_fwd - 2*sum_{i<j} t_i) > BW. Exact, for equal layers."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        layers = int(rng.integers(2, 100))
        A, t, bw = rng.uniform(1e8, 2e9), rng.uniform(1e-3, 5e-2), rng.uniform(1e9, 1e11)
        literal = next((j for j in range(layers) if (j * A + 2 * A) / (3 * layers * t - 2 * j * t) > bw), layers)
        engine = adaptive_offloaded_layers(
            layers=layers, layer_activation_bytes=A, layer_forward_s=t, ssd_bandwidth_bytes_per_s=bw
        )
        assert engine == min(literal, layers - 1)


def _ssd_node(drives, gpus_per_node=1):
    spec = ClusterSpec(
        nodes=1,
        gpus_per_node=gpus_per_node,
        accelerator=CATALOG.get("accelerators", "a100-80gb"),
        intra_node_link=CATALOG.get("interconnects", "nvlink3"),
        inter_node_link=CATALOG.get("interconnects", "ib-hdr"),
        inter_node_links_per_node=1,
        ssd=CATALOG.get("ssds", "optane-p5800x") if drives else None,
        ssds_per_node=drives,
    )
    return ClusterArrays.from_spec(spec)


def test_ssdtrain_cuts_the_activation_peak_at_their_scale_without_slowing_down():
    """SSDTrain (Wu et al. 2024): 47% lower activation peak, I/O fully hidden, negligible throughput loss.

    Setting (a reconstruction; the paper's exact model could not be retrieved here): one A100 with a
    RAID0 of 7 Intel Optane P5800X (the drives SSDTrain uses), a GPT-3 13B-shaped model at 2048 tokens.
    Tolerance: +-10 percentage points on the cut, because the cut follows the ratio r of SSD bandwidth
    to activation production rate (about 3r/(1+2r)) and the paper's exact r is not known; measured 47.5%.
    The time criterion is exact: the adaptive rule never stalls."""
    model = ModelArrays.from_llm(CATALOG.get("llms", "gpt3-13b"))
    plan = PlanArrays(
        global_batch_size=8.0,
        micro_batch_size=np.array([1.0, 2.0, 4.0]),
        sequence_length=2048.0,
        data_parallel=1.0,
        tensor_parallel=1.0,
        pipeline_parallel=1.0,
    )
    cluster = _ssd_node(7)
    kept = evaluate_plans(model=model, cluster=cluster, plan=plan)
    offloaded = evaluate_plans(
        model=model, cluster=cluster, plan=dataclasses.replace(plan, activation_offload=Offload.ADAPTIVE)
    )
    cut = 1 - offloaded.memory_activations_bytes / kept.memory_activations_bytes
    np.testing.assert_allclose(cut, 0.47, atol=0.10)
    np.testing.assert_allclose(offloaded.iteration_time_s, kept.iteration_time_s, rtol=1e-12)
    assert np.all(offloaded.time_offload_stall_s == 0)


def test_ssd_offload_stalls_when_the_drives_cannot_keep_up():
    """Offloading every layer to one drive cannot hide the I/O (the SSDTrain rule's premise); more drives hide more."""
    model = ModelArrays.from_llm(CATALOG.get("llms", "gpt3-13b"))
    plan = PlanArrays(
        global_batch_size=4.0,
        micro_batch_size=4.0,
        sequence_length=2048.0,
        data_parallel=1.0,
        tensor_parallel=1.0,
        pipeline_parallel=1.0,
        activation_offload=Offload.ALL,
    )
    stalls = [
        float(evaluate_plans(model=model, cluster=_ssd_node(d), plan=plan).time_offload_stall_s) for d in (1, 4, 16)
    ]
    assert stalls[0] > stalls[1] > stalls[2] >= 0.0
    assert stalls[0] > 0.0


def test_flash_attention_counts_its_backward_recomputation():
    """FlashAttention's backward recomputes QK^T: 2*b*s^2*h more FLOP per layer per micro-batch (Dao et al. 2022,
    Section 3.1); it removes the score traffic, so at long sequences an iteration gets faster; exact FLOP."""
    s = np.array([2048.0, 32768.0])
    model = ModelArrays.gpt(hidden_size=4096.0, num_layers=32.0, num_heads=32.0, vocab_size=51200.0, sequence_length=s)
    plan = PlanArrays(
        global_batch_size=8.0,
        micro_batch_size=1.0,
        sequence_length=s,
        data_parallel=1.0,
        tensor_parallel=8.0,
        pipeline_parallel=1.0,
    )
    plain = evaluate_plans(model=model, cluster=selene(1.0), plan=plan)
    flash = evaluate_plans(model=model, cluster=selene(1.0), plan=dataclasses.replace(plan, flash_attention=1.0))
    extra = 8 * 32 * 2 * s**2 * 4096.0  # batch x layers x 2*s^2*h
    np.testing.assert_allclose(flash.executed_flop_per_iteration - plain.executed_flop_per_iteration, extra, rtol=1e-12)
    assert flash.iteration_time_s[1] < plain.iteration_time_s[1]
    assert np.all(flash.memory_activations_bytes < plain.memory_activations_bytes)
