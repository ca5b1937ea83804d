"""FLOP, bytes and time of every op of one decoder block, per tensor-parallel rank.

One function gives the shapes (`decoder_layer_ops`) and one prices them on an accelerator
(`price_layer_ops`), so training and inference engines share them. Counts per layer, per rank,
for `batch` requests that each bring `query_tokens` new tokens (1 in decode, the prompt in
prefill) against `context_tokens` cached keys/values (notation of shared/REFERENCE.md section 1):

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

import numpy as np

from dse.engines.collectives import all_reduce_time
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

#: Which unit kind runs each op: dense GEMM/GEMV on the matrix units, attention against the
#: KV cache (per-request GEMV in decode), element-wise ops on the vector units, collectives on links.
OP_CLASS: dict[str, str] = {
    "norm_attn": "vector",
    "qkv": "matmul",
    "score": "attention",
    "softmax": "vector",
    "context": "attention",
    "out_proj": "matmul",
    "all_reduce_attn": "link",
    "norm_ffn": "vector",
    "ffn_up": "matmul",
    "ffn_act": "vector",
    "ffn_down": "matmul",
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
    weight_bytes / activation_bytes / kv_cache_bytes: bytes per element of each tensor kind.
    Attention is counted dense (no causal halving), as in shared/REFERENCE.md. fused_qkv=False
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
    *,
    matrix_flops_per_s: Num,
    vector_flops_per_s: Num,
    memory_bandwidth_bytes_per_s: Num,
    compute_efficiency: Num,
    memory_efficiency: Num,
    attention_memory_efficiency: Num,
    kernel_overhead_s: Num,
    tensor_parallel: Num,
    link_bandwidth_bytes_per_s: Num,
    link_latency_s: Num,
) -> dict[str, PricedOp]:
    """Roofline time of each op: max(FLOP/(peak*eta_c), bytes/(bandwidth*eta_m)) + overhead.

    Matrix and attention ops use the matrix peak, element-wise ops the vector peak. Attention
    against the KV cache streams per-request K/V at `attention_memory_efficiency` (batched GEMV
    kernels reach less bandwidth than weight GEMMs on GPUs); collectives
    take the ring all-reduce time (dse.engines.collectives) and no kernel overhead beyond the
    link latency. `bound` says what sets each op's time.
    """
    priced: dict[str, PricedOp] = {}
    for name, op in ops.items():
        kind = OP_CLASS[name]
        if kind == "link":
            link_s = all_reduce_time(
                bytes_per_rank=op.link_bytes,
                ranks=tensor_parallel,
                bandwidth_bytes_per_s=link_bandwidth_bytes_per_s,
                latency_s=link_latency_s,
            )
            zero = 0.0 * np.asarray(link_s)
            priced[name] = PricedOp(time_s=link_s, compute_s=zero, memory_s=zero, link_s=link_s, bound=zero + 2.0)
            continue
        peak = vector_flops_per_s if kind == "vector" else matrix_flops_per_s
        eta_m = attention_memory_efficiency if kind == "attention" else memory_efficiency
        compute_s = op.flop / (peak * compute_efficiency)
        memory_s = op.bytes_moved / (memory_bandwidth_bytes_per_s * eta_m)
        busy = np.maximum(compute_s, memory_s)
        overhead_s = op.kernels * kernel_overhead_s
        bound = np.where(overhead_s > busy, 3.0, np.where(compute_s >= memory_s, 0.0, 1.0))
        priced[name] = PricedOp(
            time_s=busy + overhead_s, compute_s=compute_s, memory_s=memory_s, link_s=0.0, bound=bound
        )
    return priced


def kv_cache_bytes_per_token(
    *, num_layers: Num, hidden_size: Num, num_heads: Num, num_kv_heads: Num, kv_cache_bytes: Num
) -> Num:
    """K and V of one token over all layers: 2 * L * a_kv * d_h * w_kv bytes."""
    return 2.0 * num_layers * num_kv_heads * (hidden_size / num_heads) * kv_cache_bytes
