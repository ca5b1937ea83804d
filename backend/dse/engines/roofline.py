"""Roofline cost of one kernel: the slower of its compute and its memory traffic, plus a launch overhead."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.specs.common import Num


@dataclass(frozen=True)
class RooflineCost:
    """Times of one op (seconds), broadcast over the inputs."""

    compute_s: Num
    memory_s: Num
    time_s: Num

    @property
    def compute_bound(self) -> Num:
        """1.0 where compute sets the time, 0.0 where memory does."""
        return np.asarray(self.compute_s >= self.memory_s, dtype=np.float64)


def roofline_cost(
    *,
    flop: Num,
    bytes_moved: Num,
    peak_flops_per_s: Num,
    memory_bandwidth_bytes_per_s: Num,
    compute_efficiency: Num = 1.0,
    memory_efficiency: Num = 1.0,
    overhead_s: Num = 0.0,
) -> RooflineCost:
    """time = max(FLOP / (peak * eta_c), bytes / (bandwidth * eta_m)) + overhead.

    The efficiencies are the sustained fractions of peak a large kernel reaches on the part
    (calibrated per accelerator); the overhead is a per-kernel launch and tail cost.
    """
    compute_s = flop / (peak_flops_per_s * compute_efficiency)
    memory_s = bytes_moved / (memory_bandwidth_bytes_per_s * memory_efficiency)
    return RooflineCost(compute_s=compute_s, memory_s=memory_s, time_s=np.maximum(compute_s, memory_s) + overhead_s)


def arithmetic_intensity(flop: Num, bytes_moved: Num) -> Num:
    """FLOP per byte moved."""
    return flop / bytes_moved
