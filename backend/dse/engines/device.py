"""One device model: an accelerator as every engine sees it, built once from its spec.

`Device.from_accelerator(spec, dtype)` is the only translation from an `AcceleratorSpec` to the
rates an engine prices work with; `Device.op_time_s` is the only place where those rates meet an
op's FLOP and bytes. Every field broadcasts (a sweep may replace any of them by an array).

Today the efficiencies are one calibrated fraction per accelerator (see the spec's
`calibration_source`); a per-op efficiency model (by op shape, dtype and software stack) plugs in
here without touching the engines that call `op_time_s`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from dse.specs.common import Num
from dse.specs.hardware import AcceleratorSpec

#: What sets an op's roofline time: the matrix units, the vector units (element-wise ops), or
#: attention against a KV cache (batched GEMVs, which reach less bandwidth than weight GEMMs).
OpClass = Literal["matrix", "vector", "attention"]

#: Codes of `OpTime.bound`.
BOUND_COMPUTE, BOUND_MEMORY, BOUND_LINK, BOUND_OVERHEAD = 0.0, 1.0, 2.0, 3.0


@dataclass(frozen=True)
class OpTime:
    """Roofline time of one op (seconds); `bound` says what sets it (a BOUND_* code)."""

    time_s: Num
    compute_s: Num
    memory_s: Num
    overhead_s: Num

    @property
    def bound(self) -> Num:
        """Worked out only when asked for: most callers need the time alone."""
        busy = np.maximum(self.compute_s, self.memory_s)
        return np.where(
            self.overhead_s > busy,
            BOUND_OVERHEAD,
            np.where(self.compute_s >= self.memory_s, BOUND_COMPUTE, BOUND_MEMORY),
        )


@dataclass(frozen=True)
class Device:
    """One accelerator's rates for one dtype, in SI units."""

    #: Peak of the matrix units for the dtype the work runs in.
    matrix_flops_per_s: Num
    #: Peak of the vector units for element-wise ops (softmax, norms); the matrix peak when unknown.
    vector_flops_per_s: Num
    memory_bandwidth_bytes_per_s: Num
    memory_capacity_bytes: Num
    #: Sustained fractions of peak reached by large kernels (calibrated per accelerator).
    compute_efficiency: Num
    memory_efficiency: Num
    attention_memory_efficiency: Num
    #: Launch and tail cost of one kernel.
    kernel_overhead_s: Num

    @classmethod
    def from_accelerator(cls, spec: AcceleratorSpec, dtype: str) -> Device:
        """The rates of `spec` for work in `dtype` (peaks fall back to fp16 where the part lacks the dtype)."""
        attention = spec.attention_memory_efficiency
        vector = spec.vector_flops_per_s  # `is None`, not `or`: a sweep may make it an array
        return cls(
            matrix_flops_per_s=spec.peak_for(dtype),
            vector_flops_per_s=spec.peak_for(dtype) if vector is None else vector,
            memory_bandwidth_bytes_per_s=spec.memory_bandwidth_bytes_per_s,
            memory_capacity_bytes=spec.memory_capacity_bytes,
            compute_efficiency=spec.compute_efficiency,
            memory_efficiency=spec.memory_efficiency,
            attention_memory_efficiency=spec.memory_efficiency if attention is None else attention,
            kernel_overhead_s=spec.kernel_overhead_s,
        )

    @property
    def achieved_matrix_flops_per_s(self) -> Num:
        """The matrix throughput a large GEMM sustains."""
        return self.matrix_flops_per_s * self.compute_efficiency

    @property
    def achieved_memory_bytes_per_s(self) -> Num:
        """The bandwidth a large streaming kernel sustains."""
        return self.memory_bandwidth_bytes_per_s * self.memory_efficiency

    def op_time_s(self, flop: Num, bytes_moved: Num, *, kernels: Num = 1.0, op_class: OpClass = "matrix") -> OpTime:
        """max(FLOP / (peak * eta_c), bytes / (bandwidth * eta_m)) + kernels * overhead."""
        peak = self.vector_flops_per_s if op_class == "vector" else self.matrix_flops_per_s
        eta_m = self.attention_memory_efficiency if op_class == "attention" else self.memory_efficiency
        compute_s = flop / (peak * self.compute_efficiency)
        memory_s = bytes_moved / (self.memory_bandwidth_bytes_per_s * eta_m)
        overhead_s = kernels * self.kernel_overhead_s
        time_s = np.maximum(compute_s, memory_s) + overhead_s
        return OpTime(time_s=time_s, compute_s=compute_s, memory_s=memory_s, overhead_s=overhead_s)
