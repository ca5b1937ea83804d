"""The training engine against further published figures (beyond Narayanan Table 1 / Korthikanti Table 4):
the claims that are no single number (orderings, yes/no, trends, ranges).

The published numbers themselves (Korthikanti et al. 2022 Table 5, Figures 1 and 7 and the 530B MFU;
GPipe Table 3; Li et al. 2021's 13.7x batch and 3.0x sequence) are records in
dse/scenarios/kinds/training/published.py, with their sources and tolerances, checked by
tests/validation/test_published_figures.py; the tests below read the same settings from there.
One calibration per accelerator, nothing fitted here: the A100's compute_efficiency and
memory_efficiency come from its preset (inference profiling data); the P100 preset's efficiencies are
flagged assumptions (see models_db/accelerators/p100-pcie-16gb.json). Published figures the engine
misses are listed, with the reason, in docs/training.md ("Further published figures").
"""

from __future__ import annotations

import numpy as np

from dse.catalog import default_catalog
from dse.engines.training import ModelArrays, PlanArrays, Recompute, SequenceParallel, evaluate_plans
from dse.scenarios.kinds.training import published

CATALOG = default_catalog()
MEGATRON = float(SequenceParallel.MEGATRON)
RECORDS = {figure.key: figure for figure in published.PUBLISHED}


def test_korthikanti_table5_present_work_is_faster_at_every_size():
    """Korthikanti et al. 2022 Table 5: SP + selective recomputation is about 30% faster than full
    recomputation at every size (each speedup is a record within 8%); the claim holds: > 1.25 for all four."""
    times = published.table5_evaluation(CATALOG).iteration_time_s
    assert np.all(times[:, 0] / times[:, 1] > 1.25)


def test_korthikanti_figure1_baseline_does_not_fit_and_present_work_fits_in_80gb():
    """Korthikanti et al. 2022 Figure 1 / Section 1: with TP alone and no recomputation none of the four
    models fits in an A100's 80 GB; with SP + selective recomputation all four fit (the paper's
    argument that 530B and 1T train without full recomputation).

    Exact (a yes/no per model). Engine totals: 100.8 / 109.1 / 146.5 / 166.9 GiB vs
    51.1 / 54.4 / 54.0 / 59.5 GiB."""
    result = published.figure1_evaluation(CATALOG)
    assert not np.any(result.fits[:, 0])
    assert np.all(result.fits[:, 1])


def test_gpipe_table3_pipeline_communication_is_negligible_over_pcie():
    """Huang et al. 2019 Section 3 / Table 3: without NVLink GPipe still scales because only activation
    tensors at partition boundaries cross devices. The engine's pipeline sends over PCIe 3 stay under 1% of
    the iteration (measured 0.11 / 0.20 / 0.33% at K = 2 / 4 / 8) while the bubble is (K-1)/(M+K-1)."""
    result = published.gpipe_p100_transformer(CATALOG, 24.0, 32.0, published.GPIPE_PARTITIONS)
    assert np.all(result.time_pipeline_send_s < 0.01 * result.iteration_time_s)
    assert np.all(np.diff(result.time_bubble_s / result.iteration_time_s) > 0)


def test_li2021_ring_max_batch_grows_with_devices_tensor_parallel_saturates():
    """Li et al. 2021 (Sequence Parallelism), Section 5 / abstract: Ring Self-Attention's maximum batch grows
    with the devices while tensor parallelism's saturates (its LayerNorm / dropout activations stay whole on
    every rank, and TP cannot exceed BERT-Base's 12 heads).

    Exact trend checks on the engine: ring keeps >= 95% of linear scaling up to 64 P100s (measured 37 ->
    2377, 100%); TP reaches <= 60% of linear at 12 (measured 37 -> 217, 49%)."""
    ring = published.bert_max_batch(CATALOG, **published.BERT_BASE, parallelism="ring", degree=[1.0, 64.0])
    tp = published.bert_max_batch(CATALOG, **published.BERT_BASE, parallelism="tp", degree=[1.0, 12.0])
    assert ring[1] >= 0.95 * 64 * ring[0]
    assert tp[1] <= 0.6 * 12 * tp[0]


def test_li2021_published_sequence_ratio_lies_inside_the_engines_range():
    """Li et al. 2021 abstract: 3.0x the maximum sequence length of tensor parallelism on 64 P100s. The batch
    behind it could not be retrieved, so four settings bracket it (BERT-Base and BERT-Large, TP at the 12 /
    16-head limit, Ring at 64, batch 16 and 64; each a record within 25%): the published 3.0 lies inside the
    engine's range over them (measured 2.73 / 3.35 Base, 2.43 / 3.50 Large)."""
    ratios = [RECORDS[key].compare(CATALOG).engine for key in RECORDS if key.startswith("li2021-ring64-vs-tp-max-seq")]
    assert len(ratios) == 4
    assert min(ratios) <= 3.0 <= max(ratios), ratios


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
    result = evaluate_plans(model=model, cluster=published.cluster(CATALOG, 8.0, accelerator="a100-40gb"), plan=plan)
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
