"""The training engine against published figures, with one calibration per accelerator.

The A100's only calibration is its preset's compute_efficiency (0.71) and memory_efficiency, set from
microsoft/vidur profiling data and PrincetonUniversity/LLMCompass real-hardware measurements (the preset's
calibration_source); links are nominal datasheet bandwidths. Nothing below is fitted to these tables.
The published numbers themselves are records in dse/scenarios/kinds/training/published.py, checked by
tests/validation/test_published_figures.py; here: exact formulas, orderings and means over rows.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.training import (
    ModelArrays,
    Offload,
    PlanArrays,
    SequenceParallel,
    evaluate_plans,
)
from dse.engines.training.offload import adaptive_offloaded_layers
from dse.scenarios.kinds.training import published
from dse.scenarios.shared.megatron import NARAYANAN_TABLE1

CATALOG = default_catalog()
RECORDS = {figure.key: figure for figure in published.PUBLISHED}


def selene(nodes):
    """DGX A100 nodes: 8 GPUs on NVLink 3, 8 HDR InfiniBand ports (Narayanan et al. 2021, Section 5)."""
    return published.cluster(CATALOG, nodes)


def test_narayanan_table1_every_plan_fits_and_the_mean_error_is_under_8_percent():
    """Narayanan et al. SC'21 Table 1, every row, evaluated in one vectorised call. Each row's achieved
    TFLOP/s per GPU is a published-figure record (kinds/training/published.py, within 12% each); this test
    holds the mean absolute error over the rows under 8%, reading the same records.

    Why not closer: the engine sees only nominal link bandwidths (NCCL's measured bus bandwidth is lower),
    no kernel launch gaps and a GEMM efficiency calibrated on inference GEMMs, so it is expected to be a few
    percent optimistic; the published rows themselves spread 44-52% of peak. Measured: +1.7% to +10.9%,
    mean 7.6%."""
    result = published.table1_evaluation(CATALOG)
    assert np.all(result.valid) and np.all(result.fits)
    rows = [figure for key, figure in RECORDS.items() if key.startswith("narayanan-table1-")]
    assert len(rows) == 10
    errors = [figure.compare(CATALOG).relative_error for figure in rows]
    assert np.mean(np.abs(errors)) < 0.08


def test_narayanan_flop_count_is_exact():
    """Narayanan et al. 2021, eq. (3) with full recomputation: 96*B*s*L*h^2*(1 + s/(6h) + V/(16*L*h)); exact."""
    result = published.table1_evaluation(CATALOG)
    table = [(published.TABLE1_SHAPES[m], NARAYANAN_TABLE1[m]) for m in published.TABLE1_ROWS]
    B = np.array([row[3] for _, row in table], dtype=float)
    L = np.array([shape[2] for shape, _ in table], dtype=float)
    h = np.array([shape[1] for shape, _ in table], dtype=float)
    s, V = 2048.0, 51200.0
    expected = 96 * B * s * L * h**2 * (1 + s / (6 * h) + V / (16 * L * h))
    np.testing.assert_allclose(result.executed_flop_per_iteration, expected, rtol=1e-12)


def test_korthikanti_22b_layer_orderings():
    """Korthikanti et al. 2022 Table 4 (each forward / backward time is a record within 15%): the orderings
    the paper reports hold exactly: SP speeds up the forward pass; recomputation slows the backward."""
    forward_ms, backward_ms = published.table4_layer_ms(CATALOG)
    assert forward_ms[1] < forward_ms[0] and backward_ms[2] > backward_ms[3] > backward_ms[0]


def _layer_comm(variant, degree, s):
    model = ModelArrays.gpt(hidden_size=4096.0, num_layers=32.0, num_heads=64.0, vocab_size=51200.0, sequence_length=s)
    tp = degree if variant is None else 1.0
    plan = PlanArrays(
        global_batch_size=1.0,
        micro_batch_size=1.0,
        sequence_length=s,
        data_parallel=1.0,
        tensor_parallel=tp,
        pipeline_parallel=1.0,
        sequence_parallel=SequenceParallel.NONE if variant is None else variant,
        sequence_parallel_degree=1.0 if variant is None else degree,
    )
    cluster = dataclasses.replace(selene(1.0), nodes=degree / 8, gpus_per_node=8.0)
    result = evaluate_plans(model=model, cluster=cluster, plan=plan)
    assert np.all(result.valid)
    return result.sequence_parallel_bytes_per_layer if variant is not None else result.tensor_parallel_bytes_per_layer


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
    """SSDTrain's adaptive rule (Wu et al. 2024; K-Wu/FlashTrain tensor_cache.py): keep layer j and after at the
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
    return published.ssd_node(CATALOG, drives, gpus_per_node)


def test_ssdtrain_adaptive_offload_never_slows_down():
    """SSDTrain (Wu et al. 2024): I/O fully hidden, negligible throughput loss. The activation peak it cuts
    (47% published) is a record per micro-batch (kinds/training/published.py, +-10 points). The time
    criterion is exact: the adaptive rule never stalls, so the iteration time is unchanged."""
    kept, offloaded = published.ssdtrain_evaluations(CATALOG)
    np.testing.assert_allclose(offloaded.iteration_time_s, kept.iteration_time_s, rtol=1e-12)
    assert np.all(offloaded.time_offload_stall_s == 0)
    assert np.all(offloaded.memory_activations_bytes < kept.memory_activations_bytes)


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
