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
    """`nodes` x `gpus_per_node` GPUs (nodes may be an array: one cluster size per plan)."""
    spec = ClusterSpec(
        nodes=1,
        gpus_per_node=gpus_per_node,
        accelerator=CATALOG.get("accelerators", accelerator),
        intra_node_link=CATALOG.get("interconnects", intra),
        inter_node_link=CATALOG.get("interconnects", inter),
        inter_node_links_per_node=ports,
    )
    return dataclasses.replace(ClusterArrays.from_spec(spec), nodes=nodes)


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
