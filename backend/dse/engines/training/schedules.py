"""Pipeline schedules: micro-batches in flight, bubble and iteration time of the pipeline.

K = pipeline stages, M = micro-batches per replica, v = model chunks per GPU (interleaved).
- GPipe (Huang et al. 2019): all M forwards then all M backwards; bubble (K-1)/(M+K-1); every
  stage keeps the activations of all M micro-batches.
- 1F1B (PipeDream-Flush, Narayanan et al. 2021): same bubble; stage i keeps min(K-i, M) in flight.
- Interleaved 1F1B: bubble divided by v, (K-1)/(v*M+K-1) of the time; the first stage keeps
  K*(1 + (K-1)/(K*v)) micro-batches' worth of its layers (Korthikanti et al. 2022, Section 4.2.3).
- DualPipe (DeepSeek-V3, arXiv:2412.19437 Section 3.2.1, Table 2): bubble (K/2 - 1)(F&B + B - 3W).
"""

from __future__ import annotations

import numpy as np

from dse.engines.training.codes import Schedule
from dse.engines.training.inputs import Array, as_array
from dse.specs.common import Num


def bubble_fraction(*, stages: Num, micro_batches: Num, virtual_stages: Num = 1.0) -> Array:
    """Idle fraction of the pipeline with equal stages: (K-1) / (v*M + K-1)."""
    k, m, v = as_array(stages), as_array(micro_batches), as_array(virtual_stages)
    return np.asarray((k - 1.0) / (v * m + k - 1.0))


def first_stage_in_flight(*, schedule: Num, stages: Num, micro_batches: Num, virtual_stages: Num = 1.0) -> Array:
    """Micro-batches whose activations of the whole stage the first stage holds at its peak."""
    sc, k, m, v = as_array(schedule), as_array(stages), as_array(micro_batches), as_array(virtual_stages)
    interleaved = np.minimum(m, k + (k - 1.0) / np.maximum(v, 1.0))
    return np.asarray(
        np.where(sc == Schedule.GPIPE, m, np.where(sc == Schedule.INTERLEAVED, interleaved, np.minimum(k, m)))
    )


def last_stage_in_flight(*, schedule: Num, stages: Num, micro_batches: Num, virtual_stages: Num = 1.0) -> Array:
    """The same for the last stage: one micro-batch under 1F1B; ((v-1)*K + 1) chunks of 1/v under interleaving."""
    sc, k, m, v = as_array(schedule), as_array(stages), as_array(micro_batches), as_array(virtual_stages)
    interleaved = np.minimum(m, ((v - 1.0) * k + 1.0) / np.maximum(v, 1.0))
    return np.asarray(np.where(sc == Schedule.GPIPE, m, np.where(sc == Schedule.INTERLEAVED, interleaved, 1.0)))


def pipeline_time(
    *, slowest_stage_s: Num, sum_of_stages_s: Num, micro_batches: Num, virtual_stages: Num = 1.0
) -> Array:
    """Time of the pipelined forward and backward passes of one iteration.

    The slowest stage sets the pace for M micro-batches; filling and draining the pipe adds the
    other stages once, divided by v when each GPU holds v chunks:
        T = M * t_max + (sum_i t_i - t_max) / v.
    With K equal stages of t this is (M + (K-1)/v) * t, so the bubble is (K-1)/(v*M + K-1).
    """
    t_max, t_sum = as_array(slowest_stage_s), as_array(sum_of_stages_s)
    return np.asarray(as_array(micro_batches) * t_max + (t_sum - t_max) / as_array(virtual_stages))


def dualpipe_bubble_s(*, stages: Num, forward_and_backward_s: Num, backward_s: Num, weight_gradient_s: Num) -> Array:
    """DualPipe's bubble, DeepSeek-V3 Table 2: (K/2 - 1)(F&B + B - 3W), with F&B the time of a forward chunk
    and a backward chunk run overlapped, B a whole backward chunk and W its weight-gradient part (K even)."""
    k = as_array(stages)
    per_step = as_array(forward_and_backward_s) + as_array(backward_s) - 3.0 * as_array(weight_gradient_s)
    return np.asarray(np.maximum(k / 2.0 - 1.0, 0.0) * np.maximum(per_step, 0.0))
