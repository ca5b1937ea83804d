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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from dse.engines.collectives import all_reduce_time
from dse.engines.device import BOUND_LINK, Device, OpClass
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


@dataclass(frozen=True)
class PricedOp:
    """Time of one op on one rank and what bounds it (0 compute, 1 memory, 2 link, 3 overhead)."""

    time_s: Num
    compute_s: Num
    memory_s: Num
    link_s: Num
    bound: Num


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
) -> dict[str, OpCost]:
    """FLOP and bytes of every op of one decoder layer on one tensor-parallel rank.

    batch: requests B; query_tokens: new tokens per request q (1 in decode, the prompt in prefill);
    context_tokens: keys/values each query attends to s (KV length; the prompt in prefill);
    weight_bytes / activation_bytes / kv_cache_bytes: bytes per element of each tensor.
    Attention is counted dense (no causal halving). fused_qkv=False
    launches Q, K and V as three kernels (eager PyTorch, as in LLMCompass's reference runs).
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

    def norm() -> OpCost:
        return OpCost(flop=norm_flop * tokens * h, bytes_moved=2.0 * tokens * h * act + norm_params * weight_bytes)

    qkv_columns = (h + kv_width) / tp
    scores = batch * heads_rank * query_tokens * context_tokens  # score elements per rank
    kv_read = batch * kv_heads_rank * head_dim * context_tokens * kv_cache_bytes  # K (or V) per rank
    attention_flop = 2.0 * batch * query_tokens * heads_rank * head_dim * context_tokens
    ffn_act_flop = SWIGLU_FLOP_PER_ELEMENT if gated_ffn else GELU_FLOP_PER_ELEMENT
    all_reduce_bytes = np.where(np.asarray(tp) > 1.0, tokens * h * act, 0.0)
    return {
        "norm_attn": norm(),
        "qkv": OpCost(
            flop=2.0 * tokens * h * qkv_columns,
            bytes_moved=h * qkv_columns * weight_bytes
            + tokens * h * act
            + tokens * h / tp * act
            + tokens * kv_width / tp * kv_cache_bytes,  # Q out, new K/V appended to the cache
            kernels=1.0 if fused_qkv else 3.0,
        ),
        "score": OpCost(
            flop=attention_flop,
            bytes_moved=tokens * h / tp * act + kv_read + scores * act,
        ),
        "softmax": OpCost(flop=SOFTMAX_FLOP_PER_ELEMENT * scores, bytes_moved=2.0 * scores * act),
        "context": OpCost(
            flop=attention_flop,
            bytes_moved=scores * act + kv_read + tokens * h / tp * act,
        ),
        "out_proj": OpCost(
            flop=2.0 * tokens * h * h / tp,
            bytes_moved=h * h / tp * weight_bytes + tokens * h / tp * act + tokens * h * act,
        ),
        "all_reduce_attn": OpCost(flop=tokens * h * (tp - 1.0) / tp, bytes_moved=0.0, link_bytes=all_reduce_bytes),
        "norm_ffn": norm(),
        "ffn_up": OpCost(
            flop=2.0 * tokens * h * ffn_in / tp,
            bytes_moved=h * ffn_in / tp * weight_bytes + tokens * h * act + tokens * ffn_in / tp * act,
        ),
        "ffn_act": OpCost(
            flop=ffn_act_flop * tokens * ffn_hidden_size / tp,
            bytes_moved=tokens * (ffn_in + ffn_hidden_size) / tp * act,
        ),
        "ffn_down": OpCost(
            flop=2.0 * tokens * ffn_hidden_size * h / tp,
            bytes_moved=ffn_hidden_size * h / tp * weight_bytes
            + tokens * ffn_hidden_size / tp * act
            + tokens * h * act,
        ),
        "all_reduce_ffn": OpCost(flop=tokens * h * (tp - 1.0) / tp, bytes_moved=0.0, link_bytes=all_reduce_bytes),
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
            priced[name] = PricedOp(
                time_s=link_s, compute_s=zero, memory_s=zero, link_s=link_s, bound=zero + BOUND_LINK
            )
            continue
        cost = device.op_time_s(op.flop, op.bytes_moved, kernels=op.kernels, op_class=op_class)
        priced[name] = PricedOp(
            time_s=cost.time_s, compute_s=cost.compute_s, memory_s=cost.memory_s, link_s=0.0, bound=cost.bound
        )
    return priced


def kv_cache_bytes_per_token(
    *, num_layers: Num, hidden_size: Num, num_heads: Num, num_kv_heads: Num, kv_cache_bytes: Num
) -> Num:
    """K and V of one token over all layers: 2 * L * a_kv * d_h * w_kv bytes."""
    return 2.0 * num_layers * num_kv_heads * (hidden_size / num_heads) * kv_cache_bytes
