"""FLOP, bytes and time of every op of one decoder block, per tensor-parallel rank.

One function gives the shapes (`decoder_layer_ops`) and one prices them on a `Device`
(`price_layer_ops`, through `Device.op_time_s`), so training and inference engines share them.
Counts per layer, per rank, for `batch` requests that each bring `query_tokens` new tokens (1 in
decode, the prompt in prefill) against `context_tokens` cached keys/values. Notation: B requests,
q new tokens each, T = B*q, s KV length, h hidden size, a heads, a_kv KV heads, d_h = h/a,
d_ff FFN width, w bytes per element, tp tensor-parallel ranks:

    QKV        2*T*h*(h + 2*a_kv*d_h)/tp FLOP, weights h*(h + 2*a_kv*d_h)*w/tp bytes
    score      2*B*q*a*d_h*s/tp FLOP, K read B*a_kv*d_h*s*w_kv/tp bytes (GEMV per request in decode)
    context    2*B*q*a*d_h*s/tp FLOP, V read likewise
    out-proj   2*T*h^2/tp;  FFN 4*T*h*d_ff/tp (GELU) or 6*T*h*d_ff/tp (gated SwiGLU)
    all-reduce T*h*w_act bytes per rank after attention and after the FFN when tp > 1

Element-wise ops (norms, softmax, activation) count a few FLOP per element; they are bound by
memory traffic and the per-kernel overhead, so the exact count does not matter. Every argument
broadcasts (numpy arrays welcome); no Python loop over design points.

Each matrix op also carries its GEMM shapes per rank (M = B*q tokens, N output columns, K input
columns; one per kernel launch) and the attention ops their shape, so that a device with a software
stack and fitted kernel models (`Device.gemm_time_s`, `prefill_attention_time_s`,
`decode_attention_time_s`, `elementwise_time_s`) prices them by shape:

    matrix ops       sum over the op's GEMMs of the fitted GEMM time (wave quantization, launch)
    attention        prefill: one FlashAttention kernel (causal) when the stack has it, split evenly
                     between score and context, softmax inside it (no time of its own); decode: the
                     fitted decode model (eager: one batched GEMV per K and per V; paged: one kernel
                     for both), or the roofline on the KV-cache bytes when there is no decode fit
    element-wise     memory-bound + the stack's launch cost; an op the stack fuses costs no launch
Without a stack every op takes today's roofline (`Device.op_time_s`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from dse.engines.collectives import all_reduce_time
from dse.engines.device import BOUND_LINK, Device, OpClass, OpTime
from dse.specs.common import Num

#: The ops of one decoder block, in execution order.
OP_NAMES: tuple[str, ...] = (
    "norm_attn",
    "qkv",
    "score",
    "softmax",
    "context",
    "out_proj",
    "all_reduce_attn",
    "norm_ffn",
    "ffn_up",
    "ffn_act",
    "ffn_down",
    "all_reduce_ffn",
)

#: Which unit runs each op: dense GEMM/GEMV on the matrix units, attention against the
#: KV cache (per-request GEMV in decode), element-wise ops on the vector units (the device's
#: `OpClass`), collectives on links.
OP_CLASS: dict[str, OpClass | Literal["link"]] = {
    "norm_attn": "vector",
    "qkv": "matrix",
    "score": "attention",
    "softmax": "vector",
    "context": "attention",
    "out_proj": "matrix",
    "all_reduce_attn": "link",
    "norm_ffn": "vector",
    "ffn_up": "matrix",
    "ffn_act": "vector",
    "ffn_down": "matrix",
    "all_reduce_ffn": "link",
}

#: FLOP per element of the element-wise ops (a convention: these ops are memory/overhead bound).
LAYERNORM_FLOP_PER_ELEMENT = 5.0  # mean, variance, normalise, scale, shift
RMSNORM_FLOP_PER_ELEMENT = 4.0  # square-mean, normalise, scale (+ rsqrt amortised)
SOFTMAX_FLOP_PER_ELEMENT = 5.0  # max, subtract, exp, sum, divide
GELU_FLOP_PER_ELEMENT = 8.0  # tanh approximation
SWIGLU_FLOP_PER_ELEMENT = 5.0  # SiLU (exp, add, divide, multiply) and the gate product


@dataclass(frozen=True)
class OpCost:
    """Work of one op on one rank: FLOP, bytes through memory, bytes each rank sends on links."""

    flop: Num
    bytes_moved: Num
    link_bytes: Num = 0.0
    #: Kernel launches the op takes (the per-kernel overhead is paid this many times).
    kernels: Num = 1.0
    #: The GEMMs of a matrix op, (M, N, K) per rank, one per kernel launch.
    gemms: tuple[tuple[Num, Num, Num], ...] = ()
    #: The shape of an attention op (score, softmax, context).
    attention: AttentionShape | None = None


@dataclass(frozen=True)
class AttentionShape:
    """Attention of one rank: B requests, q queries each against kv keys, per-rank (KV) heads."""

    batch: Num
    heads: Num
    kv_heads: Num
    query_tokens: Num
    context_tokens: Num
    head_dim: Num
    kv_cache_bytes: Num
    #: Bytes of the queries read and the outputs written (per rank).
    io_bytes: Num
    prefill: bool


@dataclass(frozen=True)
class PricedOp:
    """Time of one op on one rank and what bounds it (0 compute, 1 memory, 2 link, 3 overhead)."""

    time_s: Num
    compute_s: Num
    memory_s: Num
    link_s: Num
    #: The device's pricing of the op (None for a collective on the links).
    cost: OpTime | None = None

    @property
    def bound(self) -> Num:
        """Worked out only when asked for (the per-op table): sweeps need the times alone."""
        if self.cost is None:
            return 0.0 * np.asarray(self.link_s) + BOUND_LINK
        return self.cost.bound


BOUND_NAMES: tuple[str, ...] = ("compute", "memory", "communication", "overhead")


def decoder_layer_ops(
    *,
    batch: Num,
    query_tokens: Num,
    context_tokens: Num,
    hidden_size: Num,
    num_heads: Num,
    num_kv_heads: Num,
    ffn_hidden_size: Num,
    gated_ffn: bool,
    layernorm: bool,
    tensor_parallel: Num,
    weight_bytes: Num,
    activation_bytes: Num,
    kv_cache_bytes: Num,
    fused_qkv: bool = True,
    prefill: bool = False,
) -> dict[str, OpCost]:
    """FLOP and bytes of every op of one decoder layer on one tensor-parallel rank.

    batch: requests B; query_tokens: new tokens per request q (1 in decode, the prompt in prefill);
    context_tokens: keys/values each query attends to s (KV length; the prompt in prefill);
    weight_bytes / activation_bytes / kv_cache_bytes: bytes per element of each tensor.
    Attention is counted dense (no causal halving). fused_qkv=False
    launches Q, K and V as three kernels (eager PyTorch, as in LLMCompass's reference runs).
    prefill: the queries are the prompt itself (causal attention, one FlashAttention kernel when the
    device's stack has one); otherwise each query attends to a KV cache (decode).
    """
    tp = tensor_parallel
    h = hidden_size
    head_dim = h / num_heads
    kv_width = 2.0 * num_kv_heads * head_dim  # K and V columns
    tokens = batch * query_tokens
    heads_rank = num_heads / tp
    kv_heads_rank = num_kv_heads / tp
    act = activation_bytes
    norm_flop = LAYERNORM_FLOP_PER_ELEMENT if layernorm else RMSNORM_FLOP_PER_ELEMENT
    norm_params = (2.0 if layernorm else 1.0) * h
    ffn_in = (2.0 if gated_ffn else 1.0) * ffn_hidden_size  # gate and up columns

    # Each count is written as (the per-token or per-score coefficient, a scalar unless the model is
    # swept) times the swept quantity, so a sweep over batch and lengths pays one pass per term.
    tokens_h_act = tokens * (h * act)
    norm = OpCost(flop=tokens * (norm_flop * h), bytes_moved=tokens_h_act * 2.0 + norm_params * weight_bytes)
    qkv_columns = (h + kv_width) / tp
    tokens_context = tokens * context_tokens
    scores = tokens_context * heads_rank  # score elements per rank
    kv_read = (batch * context_tokens) * (kv_heads_rank * head_dim * kv_cache_bytes)  # K (or V) per rank
    attention_flop = tokens_context * (2.0 * heads_rank * head_dim)
    ffn_act_flop = SWIGLU_FLOP_PER_ELEMENT if gated_ffn else GELU_FLOP_PER_ELEMENT
    if np.ndim(tp) == 0:
        all_reduce_bytes: Num = tokens_h_act if float(tp) > 1.0 else 0.0 * tokens_h_act
    else:
        all_reduce_bytes = np.where(np.asarray(tp) > 1.0, tokens_h_act, 0.0)
    qkv_gemms: tuple[tuple[Num, Num, Num], ...] = (
        ((tokens, qkv_columns, h),)
        if fused_qkv
        else ((tokens, h / tp, h), (tokens, kv_width / 2.0 / tp, h), (tokens, kv_width / 2.0 / tp, h))
    )
    q_bytes = tokens * (h / tp * act)  # the queries read (or the context written) per rank
    shape = AttentionShape(
        batch=batch,
        heads=heads_rank,
        kv_heads=kv_heads_rank,
        query_tokens=query_tokens,
        context_tokens=context_tokens,
        head_dim=head_dim,
        kv_cache_bytes=kv_cache_bytes,
        io_bytes=2.0 * q_bytes,
        prefill=prefill,
    )
    scores_bytes = scores * act
    attention_bytes = q_bytes + kv_read + scores_bytes  # score: Q, K, scores out; context: scores, V, out
    all_reduce = OpCost(flop=tokens * (h * (tp - 1.0) / tp), bytes_moved=0.0, link_bytes=all_reduce_bytes)
    return {
        "norm_attn": norm,
        "qkv": OpCost(
            flop=tokens * (2.0 * h * qkv_columns),
            bytes_moved=h * qkv_columns * weight_bytes
            + tokens * (h * act + h / tp * act + kv_width / tp * kv_cache_bytes),  # Q out, new K/V into the cache
            kernels=1.0 if fused_qkv else 3.0,
            gemms=qkv_gemms,
        ),
        "score": OpCost(flop=attention_flop, bytes_moved=attention_bytes, attention=shape),
        "softmax": OpCost(flop=scores * SOFTMAX_FLOP_PER_ELEMENT, bytes_moved=scores_bytes * 2.0, attention=shape),
        "context": OpCost(flop=attention_flop, bytes_moved=attention_bytes, attention=shape),
        "out_proj": OpCost(
            flop=tokens * (2.0 * h * h / tp),
            bytes_moved=h * h / tp * weight_bytes + tokens * (h / tp * act + h * act),
            gemms=((tokens, h / tp, h),),
        ),
        "all_reduce_attn": all_reduce,
        "norm_ffn": norm,
        "ffn_up": OpCost(
            flop=tokens * (2.0 * h * ffn_in / tp),
            bytes_moved=h * ffn_in / tp * weight_bytes + tokens * (h * act + ffn_in / tp * act),
            gemms=((tokens, ffn_in / tp, h),),
        ),
        "ffn_act": OpCost(
            flop=tokens * (ffn_act_flop * ffn_hidden_size / tp),
            bytes_moved=tokens * ((ffn_in + ffn_hidden_size) / tp * act),
        ),
        "ffn_down": OpCost(
            flop=tokens * (2.0 * ffn_hidden_size * h / tp),
            bytes_moved=ffn_hidden_size * h / tp * weight_bytes + tokens * (ffn_hidden_size / tp * act + h * act),
            gemms=((tokens, h, ffn_hidden_size / tp),),
        ),
        "all_reduce_ffn": all_reduce,
    }


def price_layer_ops(
    ops: dict[str, OpCost],
    device: Device,
    *,
    tensor_parallel: Num,
    link_bandwidth_bytes_per_s: Num,
    link_latency_s: Num,
) -> dict[str, PricedOp]:
    """Time of each op on `device` (`Device.op_time_s`), collectives on the links.

    Matrix and attention ops use the matrix peak, element-wise ops the vector peak; attention
    against the KV cache streams per-request K/V at the device's attention memory efficiency
    (batched GEMV kernels reach less bandwidth than weight GEMMs on GPUs). Collectives take the
    ring all-reduce time (dse.engines.collectives) and no kernel overhead beyond the link
    latency. `bound` says what sets each op's time (the device's BOUND_* codes).
    """
    priced: dict[str, PricedOp] = {}
    fused_halves: dict[int, OpTime] = {}  # one fused attention kernel per shape, shared by score and context
    for name, op in ops.items():
        op_class = OP_CLASS[name]
        if op_class == "link":
            link_s = all_reduce_time(
                bytes_per_rank=op.link_bytes,
                ranks=tensor_parallel,
                bandwidth_bytes_per_s=link_bandwidth_bytes_per_s,
                latency_s=link_latency_s,
            )
            zero = 0.0 * np.asarray(link_s)
            priced[name] = PricedOp(time_s=link_s, compute_s=zero, memory_s=zero, link_s=link_s)
            continue
        if device.stack is None:
            cost = device.op_time_s(op.flop, op.bytes_moved, kernels=op.kernels, op_class=op_class)
        elif op_class == "matrix":
            cost = _matrix_time(device, op)
        elif op_class == "vector":
            cost = _vector_time(device, name, op)
        else:
            cost = _attention_time(device, op, fused_halves)
        priced[name] = PricedOp(
            time_s=cost.time_s, compute_s=cost.compute_s, memory_s=cost.memory_s, link_s=0.0, cost=cost
        )
    return priced


def _matrix_time(device: Device, op: OpCost) -> OpTime:
    """The op's GEMMs on the fitted GEMM model (the roofline without one)."""
    if device.gemm is None or not op.gemms:
        return device.op_time_s(op.flop, op.bytes_moved, kernels=op.kernels, op_class="matrix")
    times = [device.gemm_time_s(m, n, k) for m, n, k in op.gemms]
    if len(times) == 1:
        return times[0]
    return OpTime(
        time_s=sum((t.time_s for t in times), start=0.0 * times[0].time_s),
        compute_s=sum((t.compute_s for t in times), start=0.0 * times[0].time_s),
        memory_s=sum((t.memory_s for t in times), start=0.0 * times[0].time_s),
        overhead_s=sum((t.overhead_s for t in times), start=0.0 * times[0].time_s),
    )


def _fused_attention(device: Device, shape: AttentionShape) -> bool:
    """Whether score, softmax and context run as one kernel on this device's stack."""
    stack = device.stack
    assert stack is not None
    if shape.prefill:
        return device.prefill_attention is not None
    return stack.decode_attention_kernel == "paged-attention"


def _vector_time(device: Device, name: str, op: OpCost) -> OpTime:
    """Memory-bound + the stack's launch cost; softmax inside a fused attention kernel costs nothing."""
    if op.attention is not None and _fused_attention(device, op.attention):
        zero = 0.0 * np.asarray(op.flop)
        return OpTime(time_s=zero, compute_s=zero, memory_s=zero, overhead_s=zero)
    assert device.stack is not None
    return device.elementwise_time_s(op.flop, op.bytes_moved, fused=name in device.stack.fused_ops)


def _attention_time(device: Device, op: OpCost, fused_halves: dict[int, OpTime]) -> OpTime:
    """Score or context: half of one fused kernel, or one eager batched GEMV (see the module docstring)."""
    shape = op.attention
    if shape is None:
        return device.op_time_s(op.flop, op.bytes_moved, kernels=op.kernels, op_class="attention")
    fused = _fused_attention(device, shape)
    if fused and id(shape) in fused_halves:
        return fused_halves[id(shape)]
    cost = _attention_cost(device, op, shape, fused)
    if fused:
        fused_halves[id(shape)] = cost
    return cost


def _attention_cost(device: Device, op: OpCost, shape: AttentionShape, fused: bool) -> OpTime:
    whole: OpTime | None
    if shape.prefill:
        whole = device.prefill_attention_time_s(
            shape.batch, shape.heads, shape.query_tokens, shape.context_tokens, shape.head_dim, causal=True
        )
        if whole is None:
            return device.op_time_s(op.flop, op.bytes_moved, kernels=op.kernels, op_class="attention")
        return _half(whole)
    decode = device.decode_attention_time_s(
        shape.batch,
        shape.kv_heads,
        shape.context_tokens,
        shape.head_dim,
        shape.kv_cache_bytes,
        tensors_read=2.0 if fused else 1.0,
    )
    if decode is not None:
        return _half(decode) if fused else decode
    if not fused:
        return device.op_time_s(op.flop, op.bytes_moved, kernels=op.kernels, op_class="attention")
    kv_bytes = 2.0 * shape.batch * shape.kv_heads * shape.head_dim * shape.context_tokens * shape.kv_cache_bytes
    whole = device.op_time_s(2.0 * op.flop, kv_bytes + shape.io_bytes, kernels=1.0, op_class="attention")
    return _half(whole)


def _half(t: OpTime) -> OpTime:
    """Half of one kernel's time (score and context share a fused attention kernel)."""
    return OpTime(
        time_s=t.time_s / 2.0, compute_s=t.compute_s / 2.0, memory_s=t.memory_s / 2.0, overhead_s=t.overhead_s / 2.0
    )


def kv_cache_bytes_per_token(
    *, num_layers: Num, hidden_size: Num, num_heads: Num, num_kv_heads: Num, kv_cache_bytes: Num
) -> Num:
    """K and V of one token over all layers: 2 * L * a_kv * d_h * w_kv bytes."""
    return 2.0 * num_layers * num_kv_heads * (hidden_size / num_heads) * kv_cache_bytes
