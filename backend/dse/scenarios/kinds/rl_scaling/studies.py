"""Analyses of `rl_scaling` beyond the metrics: the iteration's time split, the policy per layer, and
samples/s over GPU count x minibatch (one engine call)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dse.engines.rl_scaling import PPOIterationCost
from dse.scenarios.base import Column, Table
from dse.scenarios.kinds.rl_scaling.inputs import RLScalingResolved, shape_of
from dse.scenarios.kinds.rl_scaling.metrics import run_ppo

#: Parts of an iteration (PPOIterationCost fields) with their labels, in the order they are shown.
SPLIT = {
    "env_stepping_s": "simulator steps (CPU)",
    "inference_s": "policy inference (GPU)",
    "forward_backward_s": "forward + backward (GPU)",
    "all_reduce_s": "gradient all-reduce (link)",
    "optimizer_s": "Adam step (GPU)",
}

#: GPU counts of the minibatch study (1 to 8: one node).
STUDY_GPUS = 8
#: The smallest minibatch of the study (samples, all GPUs); powers of two from here up.
STUDY_SMALLEST_MINIBATCH_LOG2 = 8


def iteration_split(cost: PPOIterationCost) -> dict[str, float]:
    """Seconds of each part of one iteration, by label."""
    return {label: float(np.asarray(getattr(cost, key))) for key, label in SPLIT.items()}


def iteration_split_table(split: dict[str, float], iteration_s: float) -> Table:
    return Table(
        key="iteration_split",
        title="Where one PPO iteration's time goes",
        columns=[
            Column(key="part", label="part"),
            Column(key="s", label="time", unit="s"),
            Column(key="share", label="share"),
        ],
        rows=[[label, seconds, seconds / iteration_s] for label, seconds in split.items()],
    )


def policy_layers_table(r: RLScalingResolved) -> Table:
    shape = shape_of(r.policy_layers)
    return Table(
        key="policy_layers",
        title="Policy network, per layer (one sample)",
        columns=[
            Column(key="layer", label="#"),
            Column(key="layer_type", label="layer type"),
            Column(key="inputs", label="in"),
            Column(key="outputs", label="out"),
            Column(key="parameters", label="parameters"),
            Column(key="mflop", label="forward", unit="MFLOP"),
        ],
        rows=[
            [
                i,
                layer.layer_type,
                layer.inputs,
                layer.outputs,
                float(shape.parameters[i]),
                float(shape.forward_flop[i]) / 1e6,
            ]
            for i, layer in enumerate(r.policy_layers)
        ],
    )


@dataclass(frozen=True)
class MinibatchGrid:
    """Samples/s over GPU counts (rows) x minibatch sizes (columns); NaN where the minibatch does not fit."""

    gpus: NDArray[np.float64]
    minibatch: NDArray[np.float64]
    samples_per_s: NDArray[np.float64]


def minibatch_grid(r: RLScalingResolved) -> MinibatchGrid:
    """Samples/s over (1..8 GPUs) x (minibatch 256 .. the largest 8-GPU batch), in one engine call;
    NaN where the minibatch exceeds the batch or is smaller than the GPU count."""
    gpus = np.arange(1, STUDY_GPUS + 1, dtype=np.float64)[:, None]
    largest = STUDY_GPUS * r.envs_per_gpu * r.rollout_steps_per_env
    minibatch = np.asarray(2.0 ** np.arange(STUDY_SMALLEST_MINIBATCH_LOG2, int(np.log2(largest)) + 1), dtype=np.float64)
    cost = run_ppo(r, num_gpus=gpus, minibatch_samples=minibatch[None, :])
    valid = (minibatch[None, :] <= np.asarray(cost.batch_samples)) & (minibatch[None, :] >= gpus)
    rates = np.where(valid, np.asarray(cost.samples_per_s), np.nan)
    return MinibatchGrid(gpus=gpus[:, 0], minibatch=minibatch, samples_per_s=rates)


def minibatch_answer(r: RLScalingResolved, grid: MinibatchGrid, samples_per_s: float) -> tuple[Table, str]:
    """Samples/s on the scenario's GPU count as the minibatch grows: a table and one sentence.

    `samples_per_s` is the scenario's own rate (at its minibatch)."""
    n = int(min(max(r.num_gpus, 1), grid.gpus.size))
    minibatch, row = grid.minibatch, grid.samples_per_s[n - 1]
    ok = np.isfinite(row)
    rows: list[list[float | int | str | bool | None]] = [
        [float(m), float(v), float(v / row[ok][0])] for m, v, good in zip(minibatch, row, ok, strict=True) if good
    ]
    table = Table(
        key="samples_vs_minibatch",
        title=f"Samples/s on {n} GPUs as the minibatch grows",
        columns=[
            Column(key="minibatch", label="minibatch (all GPUs)", unit="samples"),
            Column(key="samples_per_s", label="samples/s", unit="samples/s"),
            Column(key="vs_smallest", label="vs the smallest minibatch", unit="x"),
        ],
        rows=rows,
    )
    if not ok.any():
        return table, f"No minibatch from 256 up fits the batch on {n} GPUs."
    first, last = float(row[ok][0]), float(row[ok][-1])
    # the smallest minibatch that reaches 95% of the last (largest) one's rate: where growth stops paying
    near = float(minibatch[ok][int(np.argmax(row[ok] >= 0.95 * last))])
    note = (
        f"On {n} GPUs PPO reaches {first:,.0f} samples/s at minibatch {minibatch[ok][0]:,.0f} and "
        f"{last:,.0f} samples/s at {minibatch[ok][-1]:,.0f} (x{last / first:.2f}); 95% of that from minibatch "
        f"{near:,.0f} on. The scenario's minibatch {r.minibatch_samples:,.0f} gives "
        f"{samples_per_s:,.0f} samples/s. The rollout does not depend on the "
        "minibatch, so a larger minibatch only shortens the update (fewer optimizer steps and all-reduces)."
    )
    return table, note
