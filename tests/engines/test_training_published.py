"""The training engine against further published figures (beyond Narayanan Table 1 / Korthikanti Table 4).

One calibration per accelerator, nothing fitted here: the A100's compute_efficiency and
memory_efficiency come from its preset (inference profiling data); the P100 preset's efficiencies are
flagged assumptions (see models_db/accelerators/p100-pcie-16gb.json). Each test names its source,
the figure it checks and its tolerance. Published figures the engine misses are listed, with the
reason, in docs/training.md ("Further published figures").
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dse.catalog import default_catalog
from dse.engines.training import (
    ClusterArrays,
    ModelArrays,
    PlanArrays,
    Recompute,
    Schedule,
    SequenceParallel,
    evaluate_plans,
)
from dse.specs.network import ClusterSpec

CATALOG = default_catalog()
GIB = 2.0**30


def cluster(nodes, *, accelerator="a100-80gb", gpus_per_node=8, intra="nvlink3", inter="ib-hdr", ports=8):
    """`nodes` x `gpus_per_node` GPUs (either may be an array: one cluster size per plan); `ports` network
    ports per node of `gpus_per_node` GPUs."""
    spec = ClusterSpec(
        nodes=1,
        gpus_per_node=int(np.max(gpus_per_node)),
        accelerator=CATALOG.get("accelerators", accelerator),
        intra_node_link=CATALOG.get("interconnects", intra),
        inter_node_link=CATALOG.get("interconnects", inter),
        inter_node_links_per_node=ports,
    )
    return dataclasses.replace(ClusterArrays.from_spec(spec), nodes=nodes, gpus_per_node=gpus_per_node)


# --- Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models" -------------
# Table 3 configurations (seq 2048, vocab 51200, A100 80 GB on Selene, DGX nodes with 8 HDR ports), as
# transcribed with their interleaving degrees in calculon-ai/calculon validation/{22B,175B,530B,1T}_*.json:
# heads, hidden, layers, t, p, GPUs, global batch, micro-batch, virtual stages.
KORTHIKANTI_TABLE3 = np.array(
    [
        (64, 6144, 48, 8, 1, 8, 4, 4, 1),  # 22B
        (96, 12288, 96, 8, 8, 64, 64, 1, 3),  # 175B
        (128, 20480, 105, 8, 35, 280, 280, 1, 3),  # 530B
        (160, 25600, 128, 8, 64, 512, 512, 1, 1),  # 1T
    ],
    dtype=float,
)
#: Table 5, iteration time (s): full recomputation / sequence parallelism + selective recomputation
#: (also transcribed in calculon-ai/calculon calculon/llm/validation.py, seqsel_tab5).
TABLE5_FULL_S = np.array([1.42, 18.13, 49.05, 94.42])
TABLE5_PRESENT_S = np.array([1.10, 13.75, 37.83, 71.49])
#: Figure 1, activation memory per GPU (GiB) of the first stage: TP only, no recomputation / SP + selective.
FIGURE1_ACTIVATIONS_GIB = np.array(
    [[59.25, 9.5625], [66.84375, 12.3515625], [114.0234375, 23.076171875], [131.25, 26.5625]]
)
#: Figure 7, activation memory as % of the TP-only baseline: SP, selective, SP + selective, full recompute.
FIGURE7_PERCENT = np.array(
    [
        [66.84, 49.42, 16.18, 7.64],
        [62.04, 56.53, 18.49, 8.71],
        [58.31, 62.04, 20.27, 9.42],
        [58.31, 62.04, 20.27, 9.42],
    ]
)


def korthikanti_evaluation(sequence_parallel, recompute):
    """The four Table 3 models (rows) under each (SP, recompute) variant (columns), in one call."""
    a, h, L, t, p, gpus, B, b, v = (column[:, None] for column in KORTHIKANTI_TABLE3.T)
    model = ModelArrays.gpt(hidden_size=h, num_layers=L, num_heads=a, vocab_size=51200.0, sequence_length=2048.0)
    plan = PlanArrays(
        global_batch_size=B,
        micro_batch_size=b,
        sequence_length=2048.0,
        data_parallel=1.0,
        tensor_parallel=t,
        pipeline_parallel=p,
        sequence_parallel=np.asarray(sequence_parallel, dtype=float)[None, :],
        recompute=np.asarray(recompute, dtype=float)[None, :],
        pipeline_schedule=np.where(v > 1, Schedule.INTERLEAVED, Schedule.ONE_F_ONE_B),
        virtual_stages=v,
        overlap_grad_reduce=0.0,
    )
    result = evaluate_plans(model=model, cluster=cluster(gpus / 8), plan=plan)
    assert np.all(result.valid)
    return result


MEGATRON = float(SequenceParallel.MEGATRON)


def test_korthikanti_table5_iteration_times_within_12_percent():
    """Korthikanti et al. 2022 Table 5: end-to-end iteration time of 22B / 175B / 530B / 1T with full
    recomputation (1.42 / 18.13 / 49.05 / 94.42 s) and with SP + selective recomputation
    (1.10 / 13.75 / 37.83 / 71.49 s).

    Tolerance: each within 12% (as for Narayanan Table 1, same A100 calibration). Measured: full
    -3.9 / -0.9 / +3.9 / +6.6%; present work -10.5 / -4.9 / +0.6 / +5.3%."""
    result = korthikanti_evaluation([0.0, MEGATRON], [Recompute.FULL, Recompute.SELECTIVE])
    engine = result.iteration_time_s
    errors = engine / np.stack([TABLE5_FULL_S, TABLE5_PRESENT_S], axis=1) - 1
    assert np.all(np.abs(errors) < 0.12), np.round(errors, 3)


def test_korthikanti_table5_speedup_of_present_work_within_8_percent():
    """Korthikanti et al. 2022 Table 5, 'throughput increase' of SP + selective over full recomputation:
    29.0 / 31.8 / 29.7 / 32.1% (ratios of the published times: 1.29 / 1.32 / 1.30 / 1.32).

    Tolerance 8% on the ratio. Measured 1.385 / 1.373 / 1.339 / 1.337 (+7.1 / +4.2 / +3.2 / +1.2%): the
    engine's backward with full recomputation is a little slower than measured relative to the rest."""
    result = korthikanti_evaluation([0.0, MEGATRON], [Recompute.FULL, Recompute.SELECTIVE])
    engine_speedup = result.iteration_time_s[:, 0] / result.iteration_time_s[:, 1]
    published = TABLE5_FULL_S / TABLE5_PRESENT_S
    np.testing.assert_allclose(engine_speedup, published, rtol=0.08)
    assert np.all(engine_speedup > 1.25)  # the paper's claim: about 30% faster at every size


def test_korthikanti_figure1_activation_memory_matches_to_the_byte_scale():
    """Korthikanti et al. 2022 Figure 1 (GiB per GPU, values as transcribed in calculon-ai/calculon
    calculon/llm/validation.py seqsel_fig1): activations of the first pipeline stage with TP only and no
    recomputation, and with SP + selective recomputation; the interleaved schedule keeps
    p (1 + (p-1)/(p v)) micro-batches in flight (Section 4.2.3).

    Tolerance 0.1%: both come from the same Table 2 formulas. Measured: equal to 0.01 GiB."""
    result = korthikanti_evaluation([0.0, MEGATRON], [Recompute.NONE, Recompute.SELECTIVE])
    np.testing.assert_allclose(result.memory_activations_bytes / GIB, FIGURE1_ACTIVATIONS_GIB, rtol=1e-3)


def test_korthikanti_figure1_baseline_does_not_fit_and_present_work_fits_in_80gb():
    """Korthikanti et al. 2022 Figure 1 / Section 1: with TP alone and no recomputation none of the four
    models fits in an A100's 80 GB; with SP + selective recomputation all four fit (the paper's
    argument that 530B and 1T train without full recomputation).

    Exact (a yes/no per model). Engine totals: 100.8 / 109.1 / 146.5 / 166.9 GiB vs
    51.1 / 54.4 / 54.0 / 59.5 GiB."""
    result = korthikanti_evaluation([0.0, MEGATRON], [Recompute.NONE, Recompute.SELECTIVE])
    assert not np.any(result.fits[:, 0])
    assert np.all(result.fits[:, 1])


def test_korthikanti_figure7_activation_memory_relative_to_tensor_parallel_baseline():
    """Korthikanti et al. 2022 Figure 7: activation memory of SP, selective recomputation, both, and full
    recomputation as % of the TP-only baseline, for 22B / 175B / 530B / 1T (bar labels as transcribed in
    calculon-ai/calculon calculon/llm/validation.py seqsel_fig7).

    Tolerance 0.2 percentage points (bar labels rounded / read off the figure). Measured: max 0.14 points
    (530B selective 61.90 vs 62.04)."""
    sp = [0.0, MEGATRON, 0.0, MEGATRON, 0.0]
    rc = [Recompute.NONE, Recompute.NONE, Recompute.SELECTIVE, Recompute.SELECTIVE, Recompute.FULL]
    activations = korthikanti_evaluation(sp, rc).memory_activations_bytes
    percent = 100.0 * activations[:, 1:] / activations[:, :1]
    np.testing.assert_allclose(percent, FIGURE7_PERCENT, atol=0.2)


# --- GPipe (Huang et al. 2019) -------------------------------------------------------------------------------
def gpipe_p100_transformer(num_layers, micro_batches, partitions):
    """GPipe's Transformer layers (model dim 2048, FFN 8192, 32 heads, seq 1024, vocab 32k, batch 32;
    Huang et al. 2019 Section 3) on one host of P100s on PCIe 3 (no NVLink), GPipe schedule with
    re-materialisation, K partitions of equal layer counts."""
    model = ModelArrays.gpt(
        hidden_size=2048.0, num_layers=num_layers, num_heads=32.0, vocab_size=32000.0, sequence_length=1024.0
    )
    plan = PlanArrays(
        global_batch_size=32.0,
        micro_batch_size=32.0 / micro_batches,
        sequence_length=1024.0,
        data_parallel=1.0,
        tensor_parallel=1.0,
        pipeline_parallel=partitions,
        recompute=Recompute.FULL,
        pipeline_schedule=Schedule.GPIPE,
        overlap_grad_reduce=0.0,
    )
    p100_host = cluster(1.0, gpus_per_node=partitions, accelerator="p100-pcie-16gb", intra="pcie3", ports=1)
    result = evaluate_plans(model=model, cluster=p100_host, plan=plan)
    assert np.all(result.valid)
    return result


def test_gpipe_table3_p100_without_nvlink_speedup_within_12_percent():
    """Huang et al. 2019 (GPipe) Table 3: normalised training throughput of Transformer-24 on P100s without
    NVLink, M = 32 micro-batches, K = 2 / 4 / 8 partitions: 1 / 1.7 / 3.3.

    Tolerance 12% per ratio (the Table 1 tolerance). Measured 1 / 1.78 / 2.92 (+4.7%, -11.5%): the engine
    splits layers evenly and leaves the 32k-vocabulary softmax on the last stage (3 layers + logits at
    K = 8), where GPipe's partitioner balances estimated cost; the P100 efficiencies cancel in the ratio."""
    K = np.array([2.0, 4.0, 8.0])
    result = gpipe_p100_transformer(24.0, 32.0, K)
    throughput = 1.0 / result.iteration_time_s
    np.testing.assert_allclose(throughput / throughput[0], [1.0, 1.7, 3.3], rtol=0.12)


def test_gpipe_table3_pipeline_communication_is_negligible_over_pcie():
    """Huang et al. 2019 Section 3 / Table 3: without NVLink GPipe still scales because only activation
    tensors at partition boundaries cross devices. The engine's pipeline sends over PCIe 3 stay under 1% of
    the iteration (measured 0.11 / 0.20 / 0.33% at K = 2 / 4 / 8) while the bubble is (K-1)/(M+K-1)."""
    K = np.array([2.0, 4.0, 8.0])
    result = gpipe_p100_transformer(24.0, 32.0, K)
    assert np.all(result.time_pipeline_send_s < 0.01 * result.iteration_time_s)
    assert np.all(np.diff(result.time_bubble_s / result.iteration_time_s) > 0)


# --- Sequence parallelism / Ring Self-Attention (Li et al. 2021) ---------------------------------------------
def bert_max_batch(*, hidden, layers, heads, kind, degree, sequence_length=512.0):
    """Largest batch that fits on P100 16 GB for BERT (an encoder: the engine's full, non-causal attention is
    BERT's; GPT-shaped parameters, see docs) under TP or Ring Self-Attention of `degree` GPUs (one per node,
    as on Piz Daint), degrees along axis 0, batches along axis 1."""
    batches = np.arange(1.0, 4097.0)
    model = ModelArrays.gpt(
        hidden_size=hidden, num_layers=layers, num_heads=heads, vocab_size=30522.0, sequence_length=sequence_length
    )
    n = np.asarray(degree, dtype=float)[:, None]
    ring = kind == "ring"
    plan = PlanArrays(
        global_batch_size=batches[None, :],
        micro_batch_size=batches[None, :],
        sequence_length=sequence_length,
        data_parallel=1.0,
        tensor_parallel=1.0 if ring else n,
        pipeline_parallel=1.0,
        sequence_parallel=float(SequenceParallel.RING) if ring else 0.0,
        sequence_parallel_degree=n if ring else 1.0,
    )
    piz_daint = cluster(n, gpus_per_node=1.0, accelerator="p100-pcie-16gb", intra="pcie3", ports=1)
    result = evaluate_plans(model=model, cluster=piz_daint, plan=plan)
    assert np.all(result.valid)
    return np.max(np.where(result.fits, batches[None, :], 0.0), axis=1)


BERT_BASE = {"hidden": 768.0, "layers": 12.0, "heads": 12.0}


def test_li2021_ring_max_batch_grows_with_devices_tensor_parallel_saturates():
    """Li et al. 2021 (Sequence Parallelism), Section 5 / abstract: Ring Self-Attention's maximum batch grows
    with the devices while tensor parallelism's saturates (its LayerNorm / dropout activations stay whole on
    every rank, and TP cannot exceed BERT-Base's 12 heads).

    Exact trend checks on the engine: ring keeps >= 95% of linear scaling up to 64 P100s (measured 37 ->
    2377, 100%); TP reaches <= 60% of linear at 12 (measured 37 -> 217, 49%)."""
    ring = bert_max_batch(**BERT_BASE, kind="ring", degree=[1.0, 64.0])
    tp = bert_max_batch(**BERT_BASE, kind="tp", degree=[1.0, 12.0])
    assert ring[1] >= 0.95 * 64 * ring[0]
    assert tp[1] <= 0.6 * 12 * tp[0]


def test_li2021_ring_64_vs_tensor_parallel_max_batch_ratio():
    """Li et al. 2021 abstract: 13.7x the maximum batch of tensor parallelism on 64 P100s (BERT, sequence 512).

    The paper's exact setting behind 13.7x (BERT-Base or Large, TP degree, precision, allocator) could not be
    retrieved here; the engine compares BERT-Base Ring-64 with TP at its 12-head limit. Tolerance 25% (wide
    because of that). Measured 2377 / 217 = 11.0x (-20%): a partial miss, reported in docs/training.md."""
    ring = bert_max_batch(**BERT_BASE, kind="ring", degree=[64.0])
    tp = bert_max_batch(**BERT_BASE, kind="tp", degree=[12.0])
    np.testing.assert_allclose(ring / tp, 13.7, rtol=0.25)


def test_li2021_ring_64_vs_tensor_parallel_max_sequence_ratio():
    """Li et al. 2021 abstract: 3.0x the maximum sequence length of tensor parallelism on 64 P100s.

    The batch behind 3.0x could not be retrieved here; the engine brackets it. BERT-Base and BERT-Large
    (TP at the 12 / 16-head limit, Ring at 64), batch 16 and 64: measured 2.73 / 3.35 (Base) and
    2.43 / 3.50 (Large). Check: the published 3.0 lies inside the engine's range over these settings, and
    every ratio is within 25% of it."""
    sequences = np.arange(64.0, 32769.0, 64.0)  # multiples of 64, so Ring-64 splits them evenly
    ratios = []
    for shape, tp_degree in ((BERT_BASE, 12.0), ({"hidden": 1024.0, "layers": 24.0, "heads": 16.0}, 16.0)):
        for batch in (16.0, 64.0):
            longest = {}
            for kind, degree in (("tp", tp_degree), ("ring", 64.0)):
                fits = bert_max_fits(**shape, kind=kind, degree=degree, batch=batch, sequences=sequences)
                longest[kind] = sequences[fits].max()
            ratios.append(longest["ring"] / longest["tp"])
    assert min(ratios) <= 3.0 <= max(ratios), ratios
    np.testing.assert_allclose(ratios, 3.0, rtol=0.25)


def bert_max_fits(*, hidden, layers, heads, kind, degree, batch, sequences):
    """Whether BERT at each sequence length fits on P100s under TP or Ring of `degree` GPUs."""
    model = ModelArrays.gpt(
        hidden_size=hidden, num_layers=layers, num_heads=heads, vocab_size=30522.0, sequence_length=sequences
    )
    ring = kind == "ring"
    plan = PlanArrays(
        global_batch_size=batch,
        micro_batch_size=batch,
        sequence_length=sequences,
        data_parallel=1.0,
        tensor_parallel=1.0 if ring else degree,
        pipeline_parallel=1.0,
        sequence_parallel=float(SequenceParallel.RING) if ring else 0.0,
        sequence_parallel_degree=degree if ring else 1.0,
    )
    piz_daint = cluster(degree, gpus_per_node=1.0, accelerator="p100-pcie-16gb", intra="pcie3", ports=1)
    result = evaluate_plans(model=model, cluster=piz_daint, plan=plan)
    assert np.all(result.valid)
    return result.fits


# --- DeepSpeed-Ulysses (Jacobs et al. 2023) ----------------------------------------------------------------------
def ulysses_vs_megatron_30b(sequences):
    """Jacobs et al. 2023 Section 5 / Figure 3 setting as far as published: a 30B dense GPT (the gpt3-30b shape:
    hidden 7168, 56 heads, 48 layers) on 64 A100 40 GB. Megatron-LM: TP 8 with Megatron-SP (one node) x DP 8;
    DeepSpeed-Ulysses: degree 8 x DP 8 with ZeRO-3 over all 64 ranks ('we always use a ZeRO parallelism
    degree of 64'). Assumed, not published: DGX-style nodes (NVLink 3, 8 HDR ports), micro-batch 1, global
    batch 8, FlashAttention and full recomputation for both (the figures' long sequences need them).
    Rows: Megatron, Ulysses; columns: sequence lengths."""
    model = ModelArrays.gpt(
        hidden_size=7168.0, num_layers=48.0, num_heads=56.0, vocab_size=50257.0, sequence_length=sequences
    )
    ulysses = np.array([[0.0], [1.0]])
    plan = PlanArrays(
        global_batch_size=8.0,
        micro_batch_size=1.0,
        sequence_length=sequences[None, :],
        data_parallel=8.0,
        tensor_parallel=np.where(ulysses > 0, 1.0, 8.0),
        pipeline_parallel=1.0,
        sequence_parallel=np.where(ulysses > 0, float(SequenceParallel.ULYSSES), MEGATRON),
        sequence_parallel_degree=np.where(ulysses > 0, 8.0, 1.0),
        zero_stage=np.where(ulysses > 0, 3.0, 1.0),
        recompute=Recompute.FULL,
        flash_attention=1.0,
    )
    result = evaluate_plans(model=model, cluster=cluster(8.0, accelerator="a100-40gb"), plan=plan)
    assert np.all(result.valid)
    return result


def test_ulysses_fits_longer_sequences_and_is_not_slower_than_megatron_sp():
    """Jacobs et al. 2023 (DeepSpeed-Ulysses), abstract and Figure 3: '2.5x faster with 4x longer sequence
    length' than Megatron-LM on a 30B model, 64 A100s. The figure's values and each system's chosen
    configuration are not published as numbers, so this checks the direction only: Ulysses + ZeRO-3 fits
    longer sequences than Megatron-SP, and at Megatron's longest sequence it is at least as fast per GPU.

    Measured (a known miss in magnitude, see docs): longest sequence 270,336 vs 139,264 tokens (1.94x, vs
    4x published); TFLOP/s per GPU at 139,264 tokens 218.6 vs 211.5 (1.03x, vs 2.5x published; the engine
    has one GEMM efficiency, so the larger micro-batches Ulysses fits buy no speed)."""
    sequences = np.arange(8192.0, 1048577.0, 8192.0)
    result = ulysses_vs_megatron_30b(sequences)
    longest = np.max(np.where(result.fits, sequences[None, :], 0.0), axis=1)
    assert longest[1] > 1.5 * longest[0]
    at_megatron_limit = np.searchsorted(sequences, longest[0])
    tflops = result.achieved_flops_per_gpu[:, at_megatron_limit]
    assert tflops[1] >= tflops[0]


def test_korthikanti_abstract_530b_on_2240_gpus_mfu_within_12_percent():
    """Korthikanti et al. 2022 abstract / Section 6: 530B on 2240 A100s reaches 54.2% MFU with SP + selective
    recomputation vs 42.1% with full recomputation (29% faster).

    Setting: Table 3's 530B plan (t 8, p 35, interleaved v 3, micro-batch 1) replicated over data-parallel 8.
    Assumed, not published with this figure: 280 sequences per replica as in Table 3 (global batch 2240); the
    result moves by < 1.5 points at 4480. Tolerance 12% relative. Measured 41.3% / 55.2% (-1.9% / +1.8%)."""
    model = ModelArrays.gpt(
        hidden_size=20480.0, num_layers=105.0, num_heads=128.0, vocab_size=51200.0, sequence_length=2048.0
    )
    plan = PlanArrays(
        global_batch_size=2240.0,
        micro_batch_size=1.0,
        sequence_length=2048.0,
        data_parallel=8.0,
        tensor_parallel=8.0,
        pipeline_parallel=35.0,
        sequence_parallel=np.array([0.0, MEGATRON]),
        recompute=np.array([Recompute.FULL, Recompute.SELECTIVE]),
        pipeline_schedule=Schedule.INTERLEAVED,
        virtual_stages=3.0,
        overlap_grad_reduce=0.0,
    )
    result = evaluate_plans(model=model, cluster=cluster(280.0), plan=plan)
    assert np.all(result.valid) and np.all(result.fits)
    np.testing.assert_allclose(result.model_flops_utilization, [0.421, 0.542], rtol=0.12)
