"""Kernel-level time models: one GEMM and one FlashAttention-style attention kernel.

These replace a single compute and memory efficiency per accelerator by a model of how a kernel's
achieved throughput depends on its shape. Their parameters are fitted ONCE per accelerator x dtype x
software stack to public kernel measurements (models_db/calibration/data/, fitted by
benchmarks/fit_kernels.py into models_db/calibration/fits/); nothing here reads files.

GEMM C[M, N] = A[M, K] @ B[K, N] (`gemm_time_s`):
- the output is cut into tiles of tile_m x tile_n; a small M uses the smallest power-of-two tile
  height >= M (not below min_tile_m), as libraries pick skinny tiles for skinny GEMMs;
- when there are fewer tiles than SMs the K loop is split over idle SMs (split-K, at most
  max_split_k ways);
- wave quantization: the tiles x splits run in ceil(units / SMs) waves, each costing one tile's
  2 * tile_m * tile_n * (K / split + k_overhead) FLOP at the per-SM share of the achievable ceiling
  (peak * compute_efficiency); k_overhead is the prologue/epilogue of a tile in K-steps, which makes
  the throughput saturate with K;
- the memory time is the operand and result bytes at bandwidth * memory_efficiency (an implicit-GEMM
  convolution reads its input once, not once per filter tap: `a_elements` replaces M * K);
- compute and memory time blend as a p-norm (transition_exponent p; p -> inf is the roofline max),
  which is the measured, gradual memory-bound to compute-bound transition;
- plus a fixed launch overhead (or host wall-clock overhead, for stacks timed on the host);
- a grouped GEMM (`groups` problems of one shape in one launch, a mixture of experts' experts) has groups times
  the tiles in the same waves, groups times the operand bytes and one launch.

Attention (`attention_prefill_time_s`, `attention_decode_time_s`):
- prefill (and training): FLOPs 4 * b * h * q * kv * d (x (1 - q / (2 kv)) causal; x flop_multiplier,
  3.5 for forward + backward), at a fraction of peak that saturates with the KV length,
  e(d) * kv / (kv + s_half(d)), with e and s_half calibrated per head dim (interpolated in log2 d);
- decode: the KV-cache bytes read at bandwidth * decode_memory_efficiency, plus the launch overhead.

Every argument broadcasts (a sweep may pass arrays of any compatible shapes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

F64 = NDArray[np.float64]


def _a(x: ArrayLike) -> F64:
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class GemmKernelModel:
    """A GEMM library on one accelerator for one dtype (fitted parameters and datasheet facts)."""

    #: Streaming multiprocessors (datasheet / architecture whitepaper).
    sm_count: float
    #: Output tile of one thread block (fitted by grid search).
    tile_m: float
    tile_n: float
    #: Smallest tile height used for skinny GEMMs.
    min_tile_m: float = 16.0
    #: Dense tensor peak for the dtype and the memory bandwidth (datasheet), FLOP/s and bytes/s.
    peak_flops_per_s: float
    memory_bandwidth_bytes_per_s: float
    #: Bytes per element of A and B, and of C.
    input_bytes: float = 2.0
    output_bytes: float = 2.0
    #: Achievable fraction of peak of a tile's main loop (the saturating ceiling).
    compute_efficiency: float
    #: Achievable fraction of peak bandwidth.
    memory_efficiency: float
    #: Fixed cost of one kernel, seconds.
    launch_overhead_s: float
    #: Tile prologue/epilogue, in K-steps.
    k_overhead: float = 0.0
    #: p of the p-norm of compute and memory time.
    transition_exponent: float = 2.0
    #: Most ways the K loop is split when tiles are fewer than SMs.
    max_split_k: float = 16.0

    @property
    def achieved_flops_per_s(self) -> float:
        """The ceiling a large, well-shaped GEMM approaches."""
        return self.peak_flops_per_s * self.compute_efficiency


@dataclass(frozen=True)
class GemmTime:
    """Time of a GEMM (seconds) and its parts; arrays of the broadcast shape of the inputs."""

    time_s: F64
    compute_s: F64
    memory_s: F64
    waves: F64


def _tile_height(model: GemmKernelModel, m: F64) -> F64:
    """clip(2^ceil(log2(max(m, 1))), min_tile_m, tile_m), as a product of threshold tests (no logarithms):
    the height doubles once for every power of two from min_tile_m below tile_m that m exceeds."""
    t = float(model.min_tile_m)
    top = float(model.tile_m)
    tile: F64 = np.full(np.shape(m), min(t, top))
    while 2.0 * t <= top:
        tile = tile * (1.0 + (m > t))
        t *= 2.0
    if t < top:  # a tile height that is no power-of-two multiple of min_tile_m
        tile = np.where(m > t, top, tile)
    return tile


def _blend(hi: F64, lo: F64, p: float) -> F64:
    """hi * (1 + (lo/hi)^p)^(1/p): the p-norm of the two times with the larger taken out.

    The factor (1 + r^p)^(1/p) lies in [1, 2^(1/p)] and is computed in float32 through exp and log
    (5x faster than float64 powers over a sweep; the factor's relative error is ~1e-7).
    """
    r = (lo / hi).astype(np.float32)
    with np.errstate(divide="ignore"):
        r_p = np.exp(np.float32(p) * np.log(r))
    factor = np.exp(np.log(r_p + np.float32(1.0)) * np.float32(1.0 / p))
    result: F64 = hi * factor.astype(np.float64)
    return result


def gemm_time_s(
    model: GemmKernelModel,
    m: ArrayLike,
    n: ArrayLike,
    k: ArrayLike,
    *,
    a_elements: ArrayLike | None = None,
    b_bytes: ArrayLike | None = None,
    groups: ArrayLike = 1.0,
) -> GemmTime:
    """Time of C[m, n] = A[m, k] @ B[k, n] (see the module docstring for the model).

    a_elements: elements of A read from memory when A is implicit (a convolution as implicit GEMM:
    M = batch x output positions, N = output channels, K = input channels x kernel taps, and A is the
    input tensor, read once); None: m * k.
    b_bytes: bytes per element of B when it is stored in another width than the kernel's inputs (weight-only
    quantized weights, widened in the main loop: the compute is the kernel's own); None: input_bytes.
    groups: independent problems of this shape in one launch (a grouped GEMM: one per expert of a mixture of
    experts, each with its own B); their tiles share the SMs' waves and each reads its own operands.

    Written for sweeps: each term is computed at the shape of the inputs it depends on (a scalar N
    and K cost nothing per point), and the p-norm takes the larger term out (`_blend`).
    """
    m, n, k = _a(m), _a(n), _a(k)
    grouped = np.ndim(groups) > 0 or float(groups) != 1.0  # type: ignore[arg-type]
    g = _a(groups) if grouped else 1.0
    sms = model.sm_count
    # skinny GEMMs: the smallest power-of-two tile height that holds m
    # (the same arithmetic with a scalar where every point agrees: tall GEMMs take the full tile
    # height, and with at least one tile per SM there is no split-K)
    tile_m: F64 | float = float(model.tile_m) if m.size and m.min() >= model.tile_m else _tile_height(model, m)
    tiles = np.asarray(np.ceil(m / tile_m) * np.ceil(n / model.tile_n))
    if grouped:
        tiles = tiles * g
    if tiles.size and tiles.min() >= (sms if isinstance(sms, float) else np.max(sms)):
        split: F64 | float = 1.0
        waves = np.ceil(tiles / sms)
    else:
        split = np.clip(np.floor(sms / tiles), 1.0, model.max_split_k)
        waves = np.ceil(tiles * split / sms)
    seconds_per_tile_step = 2.0 * model.tile_n * sms / (model.peak_flops_per_s * model.compute_efficiency)
    compute_s = (waves * tile_m) * ((k / split + model.k_overhead) * seconds_per_tile_step)
    seconds_per_byte = 1.0 / (model.memory_bandwidth_bytes_per_s * model.memory_efficiency)
    weight_width = model.input_bytes if b_bytes is None else _a(b_bytes)
    if a_elements is None:
        memory_s = m * ((k * model.input_bytes + n * model.output_bytes) * seconds_per_byte) + (
            k * n * weight_width * seconds_per_byte
        )
    else:
        a_bytes = _a(a_elements) * model.input_bytes
        memory_s = (a_bytes + m * n * model.output_bytes + k * n * weight_width) * seconds_per_byte
    if grouped:
        memory_s = memory_s * g
    p = model.transition_exponent
    hi = np.maximum(np.maximum(compute_s, memory_s), 1e-30)
    lo = np.minimum(compute_s, memory_s)
    busy = _blend(hi, lo, float(p))
    time_s = busy + model.launch_overhead_s
    shape = np.shape(time_s)

    def full(x: F64) -> F64:  # a read-only view at the result's shape (the part itself when it has it)
        return x if np.shape(x) == shape else np.broadcast_to(x, shape)

    return GemmTime(time_s=time_s, compute_s=full(compute_s), memory_s=full(memory_s), waves=full(waves))


def gemm_achieved_flops_per_s(model: GemmKernelModel, m: ArrayLike, n: ArrayLike, k: ArrayLike) -> F64:
    """2 m n k / time: the throughput the model predicts for the shape."""
    m, n, k = _a(m), _a(n), _a(k)
    result: F64 = 2.0 * m * n * k / gemm_time_s(model, m, n, k).time_s
    return result


@dataclass(frozen=True, kw_only=True)
class AttentionKernelModel:
    """An attention kernel library on one accelerator for one dtype."""

    #: Dense tensor peak of the dtype, FLOP/s (datasheet).
    peak_flops_per_s: float
    #: Head dims the prefill parameters were calibrated at (ascending), and per head dim:
    #: asymptotic fraction of peak and the KV length at which half of it is reached, without and with
    #: a causal mask.
    head_dims: tuple[float, ...] = (128.0,)
    efficiency: tuple[float, ...] = (0.5,)
    seq_half: tuple[float, ...] = (0.0,)
    causal_efficiency: tuple[float, ...] = (0.5,)
    causal_seq_half: tuple[float, ...] = (0.0,)
    #: FLOPs of the timed pass over the forward FLOPs (1 forward, 3.5 forward + backward).
    flop_multiplier: float = 1.0
    #: Decode: peak bandwidth (bytes/s) and the fraction a KV-cache read reaches.
    memory_bandwidth_bytes_per_s: float = 0.0
    decode_memory_efficiency: float = 1.0
    #: Fixed cost of one kernel, seconds.
    launch_overhead_s: float = 0.0


def _per_head_dim(model: AttentionKernelModel, values: tuple[float, ...], head_dim: F64) -> F64:
    x = np.log2(np.asarray(model.head_dims, dtype=np.float64))
    return np.interp(np.log2(head_dim), x, np.asarray(values, dtype=np.float64))


def attention_flop(
    batch: ArrayLike, heads: ArrayLike, q_len: ArrayLike, kv_len: ArrayLike, head_dim: ArrayLike, *, causal: bool
) -> F64:
    """Forward FLOPs of the two attention matmuls (score and context), FlashAttention's count."""
    b, h, q, kv, d = _a(batch), _a(heads), _a(q_len), _a(kv_len), _a(head_dim)
    flop = 4.0 * b * h * q * kv * d
    if causal:
        flop = flop * (1.0 - np.minimum(q, kv) / (2.0 * kv))
    result: F64 = flop
    return result


def attention_prefill_time_s(
    model: AttentionKernelModel,
    batch: ArrayLike,
    heads: ArrayLike,
    q_len: ArrayLike,
    kv_len: ArrayLike,
    head_dim: ArrayLike,
    *,
    causal: bool,
) -> F64:
    """Time of one fused attention kernel over q_len queries and kv_len keys per (batch, head)."""
    kv, d = _a(kv_len), _a(head_dim)
    if causal:
        eff, half = model.causal_efficiency, model.causal_seq_half
    else:
        eff, half = model.efficiency, model.seq_half
    e_inf = _per_head_dim(model, eff, d)
    s_half = _per_head_dim(model, half, d)
    achieved = model.peak_flops_per_s * e_inf * kv / (kv + s_half)
    flop = model.flop_multiplier * attention_flop(batch, heads, q_len, kv, d, causal=causal)
    result: F64 = flop / achieved + model.launch_overhead_s
    return result


def attention_decode_time_s(
    model: AttentionKernelModel,
    batch: ArrayLike,
    kv_heads: ArrayLike,
    kv_len: ArrayLike,
    head_dim: ArrayLike,
    bytes_per_element: ArrayLike,
    *,
    tensors_read: ArrayLike = 2.0,
    kernels: ArrayLike = 1.0,
) -> F64:
    """Time of decode attention: the KV cache (K and V: tensors_read 2) streamed at the achievable bandwidth."""
    kv_bytes = _a(batch) * _a(kv_heads) * _a(kv_len) * _a(head_dim) * _a(bytes_per_element) * _a(tensors_read)
    bandwidth = model.memory_bandwidth_bytes_per_s * model.decode_memory_efficiency
    result: F64 = kv_bytes / bandwidth + _a(kernels) * model.launch_overhead_s
    return result
