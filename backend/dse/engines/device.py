"""One device model: an accelerator as every engine sees it, built once from its spec.

`Device.from_accelerator(spec, dtype)` is the only translation from an `AcceleratorSpec` to the
rates an engine prices work with; `Device.op_time_s` is the only place where those rates meet an
op's FLOP and bytes. Every field broadcasts (a sweep may replace any of them by an array).

Without kernel models the efficiencies are one calibrated fraction per accelerator (see the spec's
`calibration_source`). With a software stack (`dse.specs.stacks`) and the kernel models fitted for
(accelerator, dtype, stack) (`dse.engines.kernels`, picked by `dse.catalog.calibration.stack_device`),
`gemm_time_s` prices a GEMM by its shape (M, N, K), `prefill_attention_time_s` /
`decode_attention_time_s` price attention with the fitted FlashAttention / decode models and
`elementwise_time_s` prices a memory-bound element-wise op plus the stack's launch cost. A model
left None falls back to the roofline `op_time_s`, so engines that never ask for one keep working.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from dse.engines.kernels import (
    AttentionKernelModel,
    GemmKernelModel,
    attention_decode_time_s,
    attention_prefill_time_s,
    gemm_time_s,
)
from dse.specs.common import Num
from dse.specs.hardware import BYTES_PER_ELEMENT, AcceleratorSpec
from dse.specs.stacks import SoftwareStackSpec

#: What sets an op's roofline time: the matrix units, the vector units (element-wise ops), or
#: attention against a KV cache (batched GEMVs, which reach less bandwidth than weight GEMMs).
OpClass = Literal["matrix", "vector", "attention"]

M = TypeVar("M", GemmKernelModel, AttentionKernelModel)

#: Memory a GPU process holds beyond its model states, activations and caches, so that "fits" means fits:
#: the CUDA context and library workspaces (cuBLAS/cuDNN handles, ~0.5 GiB), NCCL's communication buffers
#: (NCCL_BUFFSIZE defaults to 4 MiB per channel and peer for the Simple protocol, plus LL/LL128 buffers, per
#: communicator: NCCL documentation, "Environment Variables", NCCL_BUFFSIZE; ~1 GiB in all) and the PyTorch
#: caching allocator's fragmentation (Rajbhandari et al., "ZeRO", SC'20, Section 3.2 "Residual Memory
#: Consumption": fragmentation leaves memory free but unusable, in extreme cases OOM with >30% free; PyTorch
#: documentation, "CUDA semantics: Memory management", reserved vs allocated), taken as 5% of the capacity
#: (an assumption, not a measurement). 1.5 GiB + 5%: 5.5 GiB on an 80 GB part. An NPU of a simulated system
#: (NeuPIMs) runs no CUDA runtime and keeps none.
MEMORY_RESERVE_FIXED_BYTES = 1.5 * 2.0**30
MEMORY_RESERVE_FRACTION = 0.05


def memory_reserve_bytes(capacity_bytes: Num) -> Num:
    """What a GPU of `capacity_bytes` keeps back for the context, NCCL and allocator fragmentation."""
    return MEMORY_RESERVE_FIXED_BYTES + MEMORY_RESERVE_FRACTION * np.asarray(capacity_bytes)


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
    #: The software stack the kernels run under (None: the roofline alone, the accelerator's overhead).
    stack: SoftwareStackSpec | None = None
    #: Kernel models fitted for (accelerator, dtype, stack); None: that op class uses the roofline.
    gemm: GemmKernelModel | None = None
    prefill_attention: AttentionKernelModel | None = None
    decode_attention: AttentionKernelModel | None = None
    #: The fused attention's forward and backward kernels together (training), where a forward + backward
    #: kernel table is fitted; None: the backward is priced from the forward model.
    attention_fwd_bwd: AttentionKernelModel | None = None
    #: The GEMM model of a mixture of experts' expert GEMMs where the stack runs them in another dtype than the
    #: rest (`SoftwareStackSpec.moe_expert_dtype`), at that dtype's peak; None: `gemm`.
    expert_gemm: GemmKernelModel | None = None
    #: Bytes per element of the dtype the work runs in (GEMM operands without a kernel model).
    element_bytes: float = 2.0
    #: Of `memory_capacity_bytes`, what the runtime keeps back (`memory_reserve_bytes` on a GPU, 0 on an NPU).
    memory_reserve_bytes: Num = 0.0

    @classmethod
    def from_accelerator(
        cls,
        spec: AcceleratorSpec,
        dtype: str,
        *,
        stack: SoftwareStackSpec | None = None,
        gemm: GemmKernelModel | None = None,
        prefill_attention: AttentionKernelModel | None = None,
        decode_attention: AttentionKernelModel | None = None,
        attention_fwd_bwd: AttentionKernelModel | None = None,
    ) -> Device:
        """The rates of `spec` for work in `dtype` (peaks fall back to fp16 where the part lacks the dtype).

        With a `stack`, the kernel models given (fitted for this accelerator, dtype and stack, or
        borrowed: see dse.catalog.calibration) price GEMMs and attention; the models' peak and
        bandwidth are the spec's own, so a sweep over the spec's numbers reaches them.
        """
        attention = spec.attention_memory_efficiency
        vector = spec.vector_flops_per_s  # `is None`, not `or`: a sweep may make it an array
        peak = spec.peak_for(dtype)
        bandwidth = spec.memory_bandwidth_bytes_per_s
        return cls(
            matrix_flops_per_s=spec.peak_for(dtype),
            vector_flops_per_s=spec.peak_for(dtype) if vector is None else vector,
            memory_bandwidth_bytes_per_s=spec.memory_bandwidth_bytes_per_s,
            memory_capacity_bytes=spec.memory_capacity_bytes,
            compute_efficiency=spec.compute_efficiency,
            memory_efficiency=spec.memory_efficiency,
            attention_memory_efficiency=spec.memory_efficiency if attention is None else attention,
            kernel_overhead_s=spec.kernel_overhead_s,
            stack=stack,
            gemm=None if gemm is None else _own_rates(gemm, peak, bandwidth),
            prefill_attention=None if prefill_attention is None else _own_rates(prefill_attention, peak, bandwidth),
            decode_attention=None if decode_attention is None else _own_rates(decode_attention, peak, bandwidth),
            attention_fwd_bwd=None if attention_fwd_bwd is None else _own_rates(attention_fwd_bwd, peak, bandwidth),
            element_bytes=BYTES_PER_ELEMENT.get(dtype, 2.0),
            memory_reserve_bytes=(
                memory_reserve_bytes(spec.memory_capacity_bytes) if spec.device_class == "gpu" else 0.0
            ),
        )

    def at_clock_fraction(self, fraction: float) -> Device:
        """The device with its compute clock scaled by `fraction`: matrix and vector peaks and the kernel models'
        peaks (their fitted fractions kept); memory bandwidth, capacity and launch costs unchanged."""
        if fraction == 1.0:
            return self
        return dataclasses.replace(
            self,
            matrix_flops_per_s=self.matrix_flops_per_s * fraction,
            vector_flops_per_s=self.vector_flops_per_s * fraction,
            gemm=_scaled_peak(self.gemm, fraction),
            prefill_attention=_scaled_peak(self.prefill_attention, fraction),
            decode_attention=_scaled_peak(self.decode_attention, fraction),
            attention_fwd_bwd=_scaled_peak(self.attention_fwd_bwd, fraction),
            expert_gemm=_scaled_peak(self.expert_gemm, fraction),
        )

    def map_rates(self, fn: Callable[[Num], Num]) -> Device:
        """The device with `fn` applied to every rate (the numeric fields; the stack and kernel models kept)."""
        return dataclasses.replace(self, **{name: fn(getattr(self, name)) for name in RATE_FIELDS})  # type: ignore[arg-type]

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

    def gemm_time_s(
        self,
        m: Num,
        n: Num,
        k: Num,
        *,
        kernels: Num = 1.0,
        a_elements: Num | None = None,
        b_bytes: Num | None = None,
        groups: Num = 1.0,
        expert: bool = False,
    ) -> OpTime:
        """C[m, n] = A[m, k] @ B[k, n]: the fitted GEMM model, or the roofline of its FLOP and bytes.

        a_elements: elements of A read when A is implicit (a convolution's input; default m * k);
        b_bytes: bytes per element of B when stored in another width (weight-only quantization; default the
        work's own element width); groups: independent problems of this shape in one launch (a grouped GEMM,
        one per expert of a mixture of experts, each reading its own B); expert: an experts' GEMM, on
        `expert_gemm` where the stack runs the experts in their own dtype.
        """
        model = self.expert_gemm if expert and self.expert_gemm is not None else self.gemm
        if model is None:
            w = self.element_bytes
            a = m * k if a_elements is None else a_elements
            moved = (a + k * n + m * n) * w if b_bytes is None else (a + m * n) * w + k * n * b_bytes
            return self.op_time_s(groups * (2.0 * m * n * k), groups * moved, kernels=kernels, op_class="matrix")
        t = gemm_time_s(model, m, n, k, a_elements=a_elements, b_bytes=b_bytes, groups=groups)
        launch = model.launch_overhead_s
        return OpTime(time_s=t.time_s, compute_s=t.compute_s, memory_s=t.memory_s, overhead_s=0.0 * t.time_s + launch)

    def prefill_attention_time_s(
        self, batch: Num, heads: Num, q_len: Num, kv_len: Num, head_dim: Num, *, causal: bool
    ) -> OpTime | None:
        """One fused (FlashAttention) kernel over q_len queries and kv_len keys; None without a model."""
        return _fused_attention(self.prefill_attention, batch, heads, q_len, kv_len, head_dim, causal)

    def attention_fwd_bwd_time_s(
        self, batch: Num, heads: Num, q_len: Num, kv_len: Num, head_dim: Num, *, causal: bool
    ) -> OpTime | None:
        """The fused attention's forward plus backward kernels (training); None without a forward + backward model."""
        return _fused_attention(self.attention_fwd_bwd, batch, heads, q_len, kv_len, head_dim, causal)

    def decode_attention_time_s(
        self,
        batch: Num,
        kv_heads: Num,
        kv_len: Num,
        head_dim: Num,
        bytes_per_element: Num,
        *,
        tensors_read: Num = 2.0,
    ) -> OpTime | None:
        """Decode attention streaming the KV cache (K and V: tensors_read 2); None without a model."""
        model = self.decode_attention
        if model is None:
            return None
        time_s = attention_decode_time_s(
            model, batch, kv_heads, kv_len, head_dim, bytes_per_element, tensors_read=tensors_read
        )
        overhead_s = 0.0 * time_s + model.launch_overhead_s
        return OpTime(time_s=time_s, compute_s=0.0 * time_s, memory_s=time_s - overhead_s, overhead_s=overhead_s)

    def elementwise_time_s(self, flop: Num, bytes_moved: Num, *, fused: bool = False) -> OpTime:
        """An element-wise op: its roofline on the vector units plus the stack's launch cost (none when fused).

        Without a stack this is `op_time_s(..., op_class="vector")` with the accelerator's overhead.
        """
        if self.stack is None:
            return self.op_time_s(flop, bytes_moved, kernels=1.0, op_class="vector")
        compute_s = flop / (self.vector_flops_per_s * self.compute_efficiency)
        memory_s = bytes_moved / (self.memory_bandwidth_bytes_per_s * self.memory_efficiency)
        overhead_s = 0.0 if fused else self.stack.elementwise_launch_overhead_s
        time_s = np.maximum(compute_s, memory_s) + overhead_s
        return OpTime(time_s=time_s, compute_s=compute_s, memory_s=memory_s, overhead_s=overhead_s)


#: The numeric rate fields of a Device (every one broadcasts; a sweep may make any an array).
RATE_FIELDS: tuple[str, ...] = (
    "matrix_flops_per_s",
    "vector_flops_per_s",
    "memory_bandwidth_bytes_per_s",
    "memory_capacity_bytes",
    "compute_efficiency",
    "memory_efficiency",
    "attention_memory_efficiency",
    "kernel_overhead_s",
    "memory_reserve_bytes",
)


def _fused_attention(
    model: AttentionKernelModel | None, batch: Num, heads: Num, q_len: Num, kv_len: Num, head_dim: Num, causal: bool
) -> OpTime | None:
    if model is None:
        return None
    time_s = attention_prefill_time_s(model, batch, heads, q_len, kv_len, head_dim, causal=causal)
    # the fitted kernel is compute-bound by construction: all of its time is matrix-unit time
    zero = 0.0 * time_s
    return OpTime(time_s=time_s, compute_s=time_s, memory_s=zero, overhead_s=zero + model.launch_overhead_s)


def _own_rates(model: M, peak_flops_per_s: Num, memory_bandwidth_bytes_per_s: Num) -> M:
    """A kernel model with the accelerator's own peak and bandwidth (a borrowed fit keeps its fractions)."""
    return dataclasses.replace(
        model,
        peak_flops_per_s=peak_flops_per_s,  # type: ignore[arg-type]
        memory_bandwidth_bytes_per_s=memory_bandwidth_bytes_per_s,  # type: ignore[arg-type]
    )


def _scaled_peak(model: M | None, fraction: float) -> M | None:
    if model is None:
        return None
    return dataclasses.replace(model, peak_flops_per_s=model.peak_flops_per_s * fraction)
