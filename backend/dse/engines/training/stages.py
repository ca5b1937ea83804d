"""Uneven pipeline stages: layers on the first, middle and last stages, and what each stage holds in flight.

The first stage also runs the embedding and the last the logits and the loss, so with an even split
the last stage is the slowest and the first holds the most activations. Llama 3 405B moved one layer
off each of them ("we reduce one Transformer layer each from the first and the last stages", Dubey
et al., "The Llama 3 Herd of Models", arXiv:2407.21783, Section 3.3.2); BLOOM 176B counted its tied
embeddings as layers when partitioning its 70 layers over 12 stages (bigscience-workshop/bigscience,
train/tr11-176B-ml/README.md, `--pp-partition-method 'type:transformer|embedding'`), so its first and
last stages held one layer fewer. Megatron-Core exposes the same as
`--decoder-first-pipeline-num-layers` / `--decoder-last-pipeline-num-layers`.
"""

from __future__ import annotations

import numpy as np

from dse.engines.training.codes import Schedule
from dse.engines.training.inputs import Array, as_array
from dse.specs.common import Num


def stage_layers(
    *, num_layers: Num, pipeline_parallel: Num, first_stage_layers: Num = 0.0, last_stage_layers: Num = 0.0
) -> tuple[Array, Array, Array]:
    """(first, middle, last) stage layers. 0 for the first or last means the even share L/p; the p-2 middle
    stages split the rest; with p <= 2 there is no middle stage and the even share stands in for it; a single
    stage holds every layer."""
    L, p = as_array(num_layers), as_array(pipeline_parallel)
    even = L / np.maximum(p, 1.0)
    first = np.where(as_array(first_stage_layers) > 0, first_stage_layers, even)
    last = np.where(as_array(last_stage_layers) > 0, last_stage_layers, even)
    middle = np.where(p > 2, (L - first - last) / np.maximum(p - 2.0, 1.0), even)
    single = p <= 1
    return (
        np.asarray(np.where(single, L, first)),
        np.asarray(np.where(single, L, middle)),
        np.asarray(np.where(single, L, last)),
    )


def stage_in_flight(*, schedule: Num, stages: Num, stage: Num, micro_batches: Num, virtual_stages: Num = 1.0) -> Array:
    """Micro-batches whose activations of its whole stage stage i (from 0) holds at its peak: all M under GPipe,
    min(p-i, M) under 1F1B, and under interleaved 1F1B the warm-up's (p-i-1)*2 + (v-1)*p chunks plus the one in
    backward, of 1/v stage each (Megatron-LM's schedule; for i = 0 it is Korthikanti's p + (p-1)/v)."""
    sc, k, i, m = as_array(schedule), as_array(stages), as_array(stage), as_array(micro_batches)
    v = np.maximum(as_array(virtual_stages), 1.0)
    interleaved = np.minimum(m, ((k - i - 1.0) * 2.0 + (v - 1.0) * k + 1.0) / v)
    return np.asarray(
        np.where(sc == Schedule.GPIPE, m, np.where(sc == Schedule.INTERLEAVED, interleaved, np.minimum(k - i, m)))
    )
