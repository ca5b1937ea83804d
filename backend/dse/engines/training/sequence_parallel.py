"""Sequence-parallel variants side by side: none, Megatron-SP, Ring Self-Attention and DeepSpeed-Ulysses
over a range of sequence lengths, for one plan, in ONE `evaluate_plans` call.

The GPUs stay the plan's: the sequence group of N GPUs (Ring, Ulysses) is carved out of the
data-parallel GPUs (dp' = dp*n/N), and without it (none, Megatron-SP) those GPUs do data
parallelism (dp' = dp*n). Global and micro-batch stay; the sequence length varies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from dse.engines.training.codes import SEQUENCE_PARALLEL_CODES
from dse.engines.training.evaluate import evaluate_plans
from dse.engines.training.inputs import ClusterArrays, ModelArrays, PlanArrays

#: Sequence-parallel variants compared side by side, in the order of the chart's legend.
SEQUENCE_PARALLEL_VARIANTS: tuple[str, ...] = ("none", "megatron", "ring", "ulysses")
#: Sequence lengths of the comparison, as multiples of the plan's (powers of two around it).
SEQUENCE_LENGTH_FACTORS: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
#: Series of the comparison -> the engine's result field it reads.
SERIES_FIELDS: dict[str, str] = {
    "sp_bytes": "sequence_parallel_bytes_per_layer",
    "tp_bytes": "tensor_parallel_bytes_per_layer",
    "sp_time": "time_sequence_parallel_s",
    "tp_time": "time_tensor_parallel_s",
    "activation_bytes": "memory_activations_bytes",
    "memory_bytes": "memory_total_bytes",
    "iteration_s": "iteration_time_s",
    "tokens_per_s": "tokens_per_s",
}


@dataclass(frozen=True)
class SequenceParallelComparison:
    """Sequence-parallel variants (rows) x sequence lengths (columns) of one plan."""

    #: GPUs a Ring / Ulysses sequence group spans (1: only none and Megatron-SP compare).
    degree: int
    variants: tuple[str, ...]
    sequence_lengths: list[int]
    #: Sequence degree and data-parallel degree of each variant.
    spread: list[int]
    data_parallel: list[int]
    #: variant -> series (SERIES_FIELDS) -> one value per sequence length (NaN where the plan is invalid).
    series: dict[str, dict[str, list[float]]]
    fits: NDArray[np.bool_]
    reasons: NDArray[np.int64]


def comparison_degree(
    *,
    sequence_parallel_degree: int,
    data_parallel: int,
    tensor_parallel: int,
    gpus_per_node: int,
    num_heads: int,
    num_kv_heads: int,
) -> int:
    """GPUs a Ring/Ulysses sequence group spans: the plan's degree, else the largest divisor of
    the data-parallel degree that fits in a node beside TP (else up to a node's GPU count),
    preferring one that also divides the heads per TP rank (Ulysses' rule), and among those a power
    of two, which divides every swept sequence length (a group of 6 splits none of them); 1 when dp is 1."""
    if sequence_parallel_degree > 1:
        return sequence_parallel_degree
    heads_per_tp = num_heads // tensor_parallel
    kv_per_tp = max(num_kv_heads // tensor_parallel, 1)
    room = max(gpus_per_node // tensor_parallel, 1)
    for limit in (room, gpus_per_node):
        for heads_rule in (True, False):
            fitting = [
                n
                for n in range(2, min(data_parallel, limit) + 1)
                if data_parallel % n == 0 and (not heads_rule or (heads_per_tp % n == 0 and kv_per_tp % n == 0))
            ]
            powers_of_two = [n for n in fitting if n & (n - 1) == 0]
            if powers_of_two or fitting:
                return max(powers_of_two or fitting)
    return 1


def sequence_parallel_comparison(
    *,
    model: ModelArrays,
    cluster: ClusterArrays,
    plan: PlanArrays,
    degree: int,
    data_parallel: int,
    sequence_parallel_degree: int,
    sequence_length: int,
) -> SequenceParallelComparison:
    """None / Megatron-SP / Ring / Ulysses over `SEQUENCE_LENGTH_FACTORS` x `sequence_length`, in ONE
    engine call; `plan` is the scenario's (scalar) plan, whose dp x sequence degree GPUs are regrouped."""
    # Without data-parallel GPUs to carve a sequence group from, only none and Megatron-SP compare.
    compared = SEQUENCE_PARALLEL_VARIANTS if degree > 1 else SEQUENCE_PARALLEL_VARIANTS[:2]
    replicas = data_parallel * sequence_parallel_degree  # GPUs per (TP, PP) cell
    lengths = sorted({max(int(sequence_length * k), 1) for k in SEQUENCE_LENGTH_FACTORS})
    codes = np.asarray([SEQUENCE_PARALLEL_CODES[k] for k in compared], dtype=float)[:, None]
    spread = np.asarray([1 if k in ("none", "megatron") else degree for k in compared], dtype=float)
    grid_plan = replace(
        plan,
        sequence_parallel=codes,
        sequence_parallel_degree=spread[:, None],
        data_parallel=(replicas / spread)[:, None],
        sequence_length=np.asarray(lengths, dtype=float)[None, :],
    )
    result = evaluate_plans(model=model, cluster=cluster, plan=grid_plan)
    grid = {name: np.asarray(getattr(result, key), dtype=float) for name, key in SERIES_FIELDS.items()}
    series: dict[str, dict[str, list[float]]] = {
        variant: {name: [float(v) for v in values[i]] for name, values in grid.items()}
        for i, variant in enumerate(compared)
    }
    return SequenceParallelComparison(
        degree=degree,
        variants=tuple(compared),
        sequence_lengths=lengths,
        spread=[int(x) for x in spread],
        data_parallel=[int(replicas // x) for x in spread],
        series=series,
        fits=np.asarray(result.fits),
        reasons=np.asarray(result.reasons),
    )
