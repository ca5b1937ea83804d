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
    rope       3*T*(a + a_kv)*d_h/tp FLOP, 2*T*(a + a_kv)*d_h*w_act/tp bytes (a stack that launches it, rotary models)
    KV write   T*2*a_kv*d_h*(w_act + w_kv)/tp bytes (likewise; otherwise inside the QKV op's traffic)

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
                     for both), or the roofline on the KV-cache bytes when there is no decode fit;
                     a stack whose decode kernel does not share KV heads across a GQA group reads
                     the cache once per query head (a/a_kv times the bytes)
    element-wise     memory-bound + the stack's launch cost; an op the stack fuses costs no launch
Without a stack every op takes today's roofline (`Device.op_time_s`).

Mixture of experts (`moe`: E routed experts of width d_e, k per token, S shared): the FFN ops
become the experts' grouped GEMMs. Their FLOP are the activated ones, 2*T*(k + S)*h*d_ff_in/tp
(d_ff_in = 2*d_e gated); their weight bytes are those of the DISTINCT experts the T tokens touch,
D = E*(1 - (1 - k/E)^T) (`expected_distinct_experts`, uniform routing) plus the S shared ones: one
token reads k experts, a large batch all E. The router (an h x E GEMM, replicated on every rank)
is counted in ffn_up. With L_d dense layers among L, each FFN op is the layer-weighted mean of the
dense and the MoE op (`moe_layer_fraction` = (L - L_d)/L), so that L times the op is the model's
FFN work. With a fitted GEMM model the experts run as one grouped GEMM per projection (`Device.gemm_time_s`
with groups = D: D problems of M = T*k/D tokens each, the mean load of a touched expert, in one launch; checked
against DeepGEMM's grouped MoE tables in tests/engines/test_kernels.py), the router and the shared experts as
dense GEMMs; a layer-weighted op keeps the dense and the MoE GEMMs at their layers' shares of the time. Experts
are split by tensor parallelism like a dense FFN (each rank holds 1/tp of every expert's columns, as
TensorRT-LLM's default tensor-parallel MoE). With expert parallelism `ep` (dividing tp and E, the EP ranks the
TP group, as TensorRT-LLM's moe_expert_parallel_size with moe_tp_size = tp/ep and vLLM's
--enable-expert-parallel without data-parallel attention) each rank holds E/ep whole experts, each split over
tp/ep ranks: the grouped GEMM has D/ep problems of T*k*imbalance/D tokens and ep/tp of an expert's columns
(`expert_load_imbalance`: the busiest rank's tokens over the mean), so weight bytes per rank are unchanged
(E/ep experts at ep/tp of each = E/tp) and the FLOP scale with the imbalance only. Attention stays
TP-sharded, so every rank already holds every token: the dispatch needs no traffic and the combine is the
same all-reduce of T*h activations as the tensor-parallel MoE. The shared experts stay split by tp.

Data-parallel attention (`attention_data_parallel` dp > 1 with an `expert_exchange`; DeepSeek-V3's inference
system, SGLang's DP attention with DeepEP): `batch` is one of dp groups of tp GPUs, each running attention, the
dense layers, the router and the shared experts for its own requests, while the routed experts are spread over
all dp*tp GPUs (ep = dp*tp): the routed part above takes the dp ranks' tokens (D of E touched by dp*T tokens,
D/dp read per GPU, tokens per expert dp*T*k/D) at 1/(tp*dp) of the columns, so the FLOP per GPU are those of
its own tokens. Two link ops carry the copies: `expert_dispatch` before the expert GEMMs (the rank's T/tp tokens'
k routed copies, x imbalance for the busiest receiver) and `expert_combine` after them, priced by
`collectives.expert_all_to_all_time` (DeepEP-calibrated; prefill ops use the node-forwarding kernels, decode
ops the direct ones). Under `two_batch_overlap` every op is counted for half the requests and runs twice
(`OpCost.repeats`), and the all-to-alls add only what the layer's compute does not cover (`overlapped_time`).

Multi-head latent attention (`mla`, DeepSeek-V2 section 2.1): the cache holds one compressed latent
of r_kv + d_rope per token and layer, shared by the heads (replicated on every tensor-parallel
rank). Decode uses the absorbed weights (W_UK into the query, W_UV after the context): per token and
rank the score costs 2*a/tp*(r_kv + d_rope)*s FLOP and the context 2*a/tp*r_kv*s, against one read
of the latent; the qkv op holds the query path (q_a, q_b), the latent projection (kv_a) and the
absorption of W_UK, the out-projection the absorption of W_UV and o_proj. Prefill decompresses K
and V (kv_b) and attends over a heads of d_nope + d_rope (scores) and d_v (values). MLA attention
is priced on the roofline (the fitted attention kernels are for ordinary attention).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dse.engines.collectives import all_reduce_time, expert_all_to_all_time, overlapped_time
from dse.engines.device import BOUND_LINK, Device, OpClass, OpTime
from dse.engines.transformer import MLAShape, MoEShape, expected_distinct_experts
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
    "rope": "vector",
    "kv_cache_write": "vector",
    "ffn_down": "matrix",
    "all_reduce_ffn": "link",
    "expert_dispatch": "link",
    "expert_combine": "link",
}

#: The ops a stack that launches rotary embedding and the KV-cache write as kernels of their own adds after the
#: QKV GEMM (`decoder_layer_ops` rope / kv_cache_write).
ROPE_CACHE_WRITE_OPS: tuple[str, ...] = ("rope", "kv_cache_write")

#: The ops data-parallel attention with expert parallelism adds around the experts (`ExpertExchange`): the
#: all-to-alls that send each token's routed copies to their experts' GPUs and bring the results back.
EXPERT_EXCHANGE_OPS: tuple[str, ...] = ("expert_dispatch", "expert_combine")

#: FLOP per element of the element-wise ops (a convention: these ops are memory/overhead bound).
LAYERNORM_FLOP_PER_ELEMENT = 5.0  # mean, variance, normalise, scale, shift
RMSNORM_FLOP_PER_ELEMENT = 4.0  # square-mean, normalise, scale (+ rsqrt amortised)
SOFTMAX_FLOP_PER_ELEMENT = 5.0  # max, subtract, exp, sum, divide
GELU_FLOP_PER_ELEMENT = 8.0  # tanh approximation
SWIGLU_FLOP_PER_ELEMENT = 5.0  # SiLU (exp, add, divide, multiply) and the gate product
ROPE_FLOP_PER_ELEMENT = 3.0  # a rotated pair: four multiplies and two adds


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
    #: Bytes per element of the GEMMs' weights (B), which may be stored narrower than the kernel's inputs
    #: (weight-only quantization: fp8 weights under fp16 activations); None: the kernel's input width.
    gemm_weight_bytes: Num | None = None
    #: Per GEMM: the problems of its shape in one launch (a grouped GEMM: one per expert touched), and the
    #: share of its time the op counts (the layer-weighted mean of dense and MoE layers); () = 1 each.
    gemm_groups: tuple[Num, ...] = ()
    gemm_shares: tuple[Num, ...] = ()
    #: Per GEMM: whether it is an experts' GEMM of a mixture of experts (priced on `Device.expert_gemm` where the
    #: stack runs the experts in another dtype than the rest); () = none.
    expert_gemms: tuple[bool, ...] = ()
    #: The shape of an attention op (score, softmax, context).
    attention: AttentionShape | None = None
    #: An expert all-to-all (dispatch or combine) and the links it crosses.
    exchange: ExchangeShape | None = None
    #: Times the op runs per layer: 2 under two-batch overlap (each count above is one micro-batch's).
    repeats: Num = 1.0


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
class ExpertExchange:
    """Data-parallel attention with expert parallelism across GPUs and nodes (DeepSeek-V3's inference system,
    SGLang's DP attention + DeepEP): the links the dispatch and combine all-to-alls cross and what they send."""

    #: GPUs of the EP group in one node (NVLink), the rest reached through each GPU's own NIC.
    ranks_per_node: Num
    #: Nominal per-direction bandwidth of a GPU's NVLink and of its network port (the DeepEP fits' fractions
    #: of them apply: dse.engines.collectives.expert_all_to_all_time).
    nvlink_bandwidth_bytes_per_s: Num
    network_bandwidth_bytes_per_s: Num
    #: Bytes per element each copy carries out (dispatch: fp8 with its scales, or the activations) and back.
    dispatch_bytes_per_element: Num
    combine_bytes_per_element: Num
    #: Node-limited routing (M nodes per token; 0 = no limit): bounds the nodes a prefill token crosses to.
    node_limit: Num = 0.0
    #: Two micro-batches, one's all-to-alls under the other's compute (DeepSeek's dual-batch overlap, SGLang's
    #: two-batch overlap); otherwise they add their whole time.
    two_batch_overlap: bool = True


#: Share of the SMs DeepEP's normal (prefill) kernels take while they overlap compute: DeepSeek-V3's 20 of the
#: H800's 132 SMs (arXiv:2412.19437 Section 3.2.2, as dse.engines.training.experts.OVERLAP_SM_SHARE). The
#: low-latency (decode) kernels take none: "a hook-based communication-computation overlapping method that does
#: not occupy any SM resource" (deepseek-ai/DeepEP README.md @ 567632dd59810d77b3cc05553df953cc0f779799).
PREFILL_EXCHANGE_SM_SHARE = 20.0 / 132.0


@dataclass(frozen=True)
class ExchangeShape:
    """One expert all-to-all of one rank: the bytes it sends, its group, its layers' share (mean layer)."""

    bytes_per_rank: Num
    ranks: Num
    experts_per_token: Num
    layer_share: Num
    prefill: bool
    links: ExpertExchange


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
    head_dim: Num | None = None,
    fused_gate_up: bool = True,
    moe: MoEShape | None = None,
    moe_layer_fraction: Num = 1.0,
    mla: MLAShape | None = None,
    expert_parallel: Num = 1.0,
    expert_load_imbalance: Num = 1.0,
    attention_data_parallel: Num = 1.0,
    expert_exchange: ExpertExchange | None = None,
    expert_weight_bytes: Num | None = None,
    rope: bool = False,
    kv_cache_write: bool = False,
) -> dict[str, OpCost]:
    """FLOP and bytes of every op of one decoder layer on one tensor-parallel rank.

    batch: requests B; query_tokens: new tokens per request q (1 in decode, the prompt in prefill);
    context_tokens: keys/values each query attends to s (KV length; the prompt in prefill);
    weight_bytes / activation_bytes / kv_cache_bytes: bytes per element of each tensor.
    Attention is counted dense (no causal halving). fused_qkv=False
    launches Q, K and V as three kernels (eager PyTorch, as in LLMCompass's reference runs).
    prefill: the queries are the prompt itself (causal attention, one FlashAttention kernel when the
    device's stack has one); otherwise each query attends to a KV cache (decode).
    head_dim: per-head width when it is not h / num_heads (Qwen3). fused_gate_up=False runs a gated FFN's
    gate and up projections as two GEMMs of [h, ffn] (the stack's `fused_gate_up_gemm`); moe, moe_layer_fraction, mla,
    expert_parallel, expert_load_imbalance, attention_data_parallel, expert_exchange: see the module docstring
    (batch is then one data-parallel attention rank's); expert_weight_bytes: the experts' weights' width where
    the stack keeps them in another dtype than the rest (None: weight_bytes). rope / kv_cache_write: the rotary
    embedding of the queries and keys and the copy of the new keys and values into the cache as element-wise ops
    of their own after the QKV GEMM (a stack's `rope_and_cache_write_kernels`; vLLM's rotary_embedding and
    reshape_and_cache kernels): rope reads and writes the rank's queries and keys, the write reads the new keys
    and values and stores them in the cache's dtype.
    """
    tp = tensor_parallel
    # two-batch overlap: every op runs once per micro-batch of half the requests
    micro_batches = 2.0 if expert_exchange is not None and expert_exchange.two_batch_overlap else 1.0
    batch = batch / micro_batches if micro_batches > 1.0 else batch
    h = hidden_size
    q_width: Num = h if head_dim is None else num_heads * head_dim  # query (and context) columns
    head_dim = h / num_heads if head_dim is None else head_dim
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
    qkv_columns = (q_width + kv_width) / tp
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
        else ((tokens, q_width / tp, h), (tokens, kv_width / 2.0 / tp, h), (tokens, kv_width / 2.0 / tp, h))
    )
    q_bytes = tokens * (q_width / tp * act)  # the queries read (or the context written) per rank
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
    ops: dict[str, OpCost] = {
        "norm_attn": norm,
        "qkv": OpCost(
            flop=tokens * (2.0 * h * qkv_columns),
            bytes_moved=h * qkv_columns * weight_bytes
            + tokens * (h * act + q_width / tp * act + kv_width / tp * kv_cache_bytes),  # Q out, new K/V into the cache
            kernels=1.0 if fused_qkv else 3.0,
            gemms=qkv_gemms,
            gemm_weight_bytes=weight_bytes,
        ),
        "score": OpCost(flop=attention_flop, bytes_moved=attention_bytes, attention=shape),
        "softmax": OpCost(flop=scores * SOFTMAX_FLOP_PER_ELEMENT, bytes_moved=scores_bytes * 2.0, attention=shape),
        "context": OpCost(flop=attention_flop, bytes_moved=attention_bytes, attention=shape),
        "out_proj": OpCost(
            flop=tokens * (2.0 * q_width * h / tp),
            bytes_moved=q_width * h / tp * weight_bytes + tokens * (q_width / tp * act + h * act),
            gemms=((tokens, h / tp, q_width),),
            gemm_weight_bytes=weight_bytes,
        ),
        "all_reduce_attn": all_reduce,
        "norm_ffn": norm,
        "ffn_up": OpCost(
            flop=tokens * (2.0 * h * ffn_in / tp),
            bytes_moved=h * ffn_in / tp * weight_bytes + tokens * (h * act + ffn_in / tp * act),
            kernels=1.0 if fused_gate_up or not gated_ffn else 2.0,
            gemms=(
                ((tokens, ffn_in / tp, h),)
                if fused_gate_up or not gated_ffn
                else ((tokens, ffn_hidden_size / tp, h), (tokens, ffn_hidden_size / tp, h))
            ),
            gemm_weight_bytes=weight_bytes,
        ),
        "ffn_act": OpCost(
            flop=tokens * (ffn_act_flop * ffn_hidden_size / tp),
            bytes_moved=tokens * ((ffn_in + ffn_hidden_size) / tp * act),
        ),
        "ffn_down": OpCost(
            flop=tokens * (2.0 * ffn_hidden_size * h / tp),
            bytes_moved=ffn_hidden_size * h / tp * weight_bytes + tokens * (ffn_hidden_size / tp * act + h * act),
            gemms=((tokens, h, ffn_hidden_size / tp),),
            gemm_weight_bytes=weight_bytes,
        ),
        "all_reduce_ffn": all_reduce,
    }
    if rope or kv_cache_write:
        rotated = tokens * ((q_width + kv_width / 2.0) / tp)  # query and key elements per rank
        new_kv = tokens * (kv_width / tp)  # new key and value elements per rank
        extra: dict[str, OpCost] = {}
        if rope:
            extra["rope"] = OpCost(flop=rotated * ROPE_FLOP_PER_ELEMENT, bytes_moved=rotated * (2.0 * act))
        if kv_cache_write:
            extra["kv_cache_write"] = OpCost(flop=0.0 * new_kv, bytes_moved=new_kv * (act + kv_cache_bytes))
        names = list(ops)
        at = names.index("qkv") + 1
        ops = {name: ops[name] for name in names[:at]} | extra | {name: ops[name] for name in names[at:]}
    if mla is not None:
        ops.update(
            _mla_attention_ops(
                mla,
                batch=batch,
                query_tokens=query_tokens,
                context_tokens=context_tokens,
                hidden_size=h,
                num_heads=num_heads,
                tensor_parallel=tp,
                weight_bytes=weight_bytes,
                activation_bytes=act,
                kv_cache_bytes=kv_cache_bytes,
                prefill=prefill,
            )
        )
    if moe is not None:
        expert_ops = _moe_ffn_ops(
            moe,
            tokens=tokens,
            hidden_size=h,
            gated_ffn=gated_ffn,
            tensor_parallel=tp,
            weight_bytes=weight_bytes,
            activation_bytes=act,
            expert_parallel=expert_parallel,
            expert_load_imbalance=expert_load_imbalance,
            data_parallel=attention_data_parallel,
            expert_weight_bytes=expert_weight_bytes,
        )
        for name, expert_op in expert_ops.items():
            ops[name] = _blend(ops[name], expert_op, moe_layer_fraction)
        if expert_exchange is not None:
            ops = _with_exchange(
                ops,
                moe,
                expert_exchange,
                tokens=tokens / tp,  # the DP rank's tokens, each of its TP ranks sending its share
                hidden_size=h,
                expert_parallel=expert_parallel,
                expert_load_imbalance=expert_load_imbalance,
                moe_layer_fraction=moe_layer_fraction,
                prefill=prefill,
            )
    if micro_batches > 1.0:
        ops = {name: dataclasses.replace(op, repeats=micro_batches) for name, op in ops.items()}
    return ops


def _with_exchange(
    ops: dict[str, OpCost],
    moe: MoEShape,
    links: ExpertExchange,
    *,
    tokens: Num,
    hidden_size: Num,
    expert_parallel: Num,
    expert_load_imbalance: Num,
    moe_layer_fraction: Num,
    prefill: bool,
) -> dict[str, OpCost]:
    """The ops with the dispatch before the expert GEMMs and the combine after them (the router, counted in
    ffn_up, runs before the dispatch). Each rank sends its tokens' k routed copies; the busiest rank receives
    `expert_load_imbalance` times the mean, so its side bounds the all-to-all."""
    copies = tokens * (moe.experts_per_token * expert_load_imbalance) * hidden_size

    def exchange(bytes_per_element: Num) -> OpCost:
        shape = ExchangeShape(
            bytes_per_rank=copies * bytes_per_element,
            ranks=expert_parallel,
            experts_per_token=moe.experts_per_token,
            layer_share=moe_layer_fraction,
            prefill=prefill,
            links=links,
        )
        return OpCost(flop=0.0, bytes_moved=0.0, link_bytes=copies * bytes_per_element, exchange=shape)

    out: dict[str, OpCost] = {}
    for name, op in ops.items():
        if name == "ffn_up":
            out["expert_dispatch"] = exchange(links.dispatch_bytes_per_element)
        out[name] = op
        if name == "ffn_down":
            out["expert_combine"] = exchange(links.combine_bytes_per_element)
    return out


def _blend(dense: OpCost, moe: OpCost, moe_fraction: Num) -> OpCost:
    """The layer-weighted mean of a dense-layer op and an MoE-layer op: FLOP and bytes averaged, the GEMMs of
    both kept with their layers' shares of the time (each priced at its own shape)."""
    if np.ndim(moe_fraction) == 0 and float(moe_fraction) == 1.0:
        return moe

    def mean(d: Num, m: Num) -> Num:
        return (1.0 - moe_fraction) * d + moe_fraction * m

    def shares(op: OpCost, share: Num) -> tuple[Num, ...]:
        return tuple(share * s for s in _gemm_shares(op))

    return OpCost(
        flop=mean(dense.flop, moe.flop),
        bytes_moved=mean(dense.bytes_moved, moe.bytes_moved),
        kernels=mean(dense.kernels, moe.kernels),
        gemms=dense.gemms + moe.gemms,
        gemm_weight_bytes=moe.gemm_weight_bytes,
        gemm_groups=_gemm_groups(dense) + _gemm_groups(moe),
        gemm_shares=shares(dense, 1.0 - moe_fraction) + shares(moe, moe_fraction),
        expert_gemms=_expert_gemms(dense) + _expert_gemms(moe),
    )


def _gemm_groups(op: OpCost) -> tuple[Num, ...]:
    return op.gemm_groups or (1.0,) * len(op.gemms)


def _gemm_shares(op: OpCost) -> tuple[Num, ...]:
    return op.gemm_shares or (1.0,) * len(op.gemms)


def _expert_gemms(op: OpCost) -> tuple[bool, ...]:
    return op.expert_gemms or (False,) * len(op.gemms)


def _moe_ffn_ops(
    moe: MoEShape,
    *,
    tokens: Num,
    hidden_size: Num,
    gated_ffn: bool,
    tensor_parallel: Num,
    weight_bytes: Num,
    activation_bytes: Num,
    expert_parallel: Num = 1.0,
    expert_load_imbalance: Num = 1.0,
    data_parallel: Num = 1.0,
    expert_weight_bytes: Num | None = None,
) -> dict[str, OpCost]:
    """ffn_up (with the router), ffn_act and ffn_down of one MoE layer on one rank (module docstring); the
    experts' weights `expert_weight_bytes` wide (None: weight_bytes, as the router's)."""
    h, tp, act = hidden_size, tensor_parallel, activation_bytes
    expert_bytes = weight_bytes if expert_weight_bytes is None else expert_weight_bytes
    ep, imbalance, dp = expert_parallel, expert_load_imbalance, data_parallel
    d_e = moe.expert_ffn_hidden_size
    d_in = (2.0 if gated_ffn else 1.0) * d_e
    shared = moe.shared_experts
    # token-expert pairs at 1/tp of an expert's columns (ep/tp of them for 1/ep of the pairs on this rank)
    routed_tokens = tokens * (moe.experts_per_token * imbalance + shared)
    # token-expert pairs whose h-wide inputs and outputs this rank reads and writes
    # (with data-parallel attention the routed experts see the dp ranks' tokens, split over tp*dp GPUs; the
    # router and the shared experts see the rank's own: the FLOP per rank are the same)
    rank_pairs = tokens * (moe.experts_per_token * imbalance * dp / ep + shared)
    touched = expected_distinct_experts(moe.num_experts, moe.experts_per_token, tokens * dp)
    experts_read = touched / dp + shared  # at d/tp columns each: D/ep local experts at ep/(tp*dp) of their columns
    # the grouped GEMM: one problem per local routed expert touched, each of the tokens routed to it (on average)
    tokens_per_expert = tokens * dp * (moe.experts_per_token * imbalance) / np.maximum(touched, 1e-30)  # 0: none
    router_flop = tokens * (2.0 * h * moe.num_experts)
    router_bytes = h * moe.num_experts * weight_bytes + tokens * (moe.num_experts * act)
    ffn_act_flop = SWIGLU_FLOP_PER_ELEMENT if gated_ffn else GELU_FLOP_PER_ELEMENT
    up_gemms: tuple[tuple[Num, Num, Num], ...] = (
        (tokens, moe.num_experts, h),
        (tokens_per_expert, d_in / (tp * dp) * ep, h),
    )
    down_gemms: tuple[tuple[Num, Num, Num], ...] = ((tokens_per_expert, h, d_e / (tp * dp) * ep),)
    up_groups: tuple[Num, ...] = (1.0, touched / ep)
    down_groups: tuple[Num, ...] = (touched / ep,)
    up_experts: tuple[bool, ...] = (False, True)
    down_experts: tuple[bool, ...] = (True,)
    if (
        np.ndim(shared) > 0 or float(shared) > 0.0
    ):  # the shared experts see every token: one dense GEMM of their concatenated columns
        up_gemms += ((tokens, shared * d_in / tp, h),)
        down_gemms += ((tokens, h, shared * d_e / tp),)
        up_groups += (1.0,)
        down_groups += (1.0,)
        up_experts += (True,)
        down_experts += (True,)
    tensor_parallel_experts = np.ndim(ep) == 0 and float(ep) == 1.0  # every rank sees every pair
    if tensor_parallel_experts:
        up_io = routed_tokens * (h * act + d_in / tp * act)
        down_io = routed_tokens * (d_e / tp * act + h * act)
    else:
        up_io = rank_pairs * (h * act) + routed_tokens * (d_in / tp * act)
        down_io = routed_tokens * (d_e / tp * act) + rank_pairs * (h * act)
    return {
        "ffn_up": OpCost(
            flop=routed_tokens * (2.0 * h * d_in / tp) + router_flop,
            bytes_moved=experts_read * (h * d_in / tp * expert_bytes) + up_io + router_bytes,
            kernels=float(len(up_gemms)),  # the router GEMM, one grouped expert GEMM (and the shared experts')
            gemms=up_gemms,
            gemm_weight_bytes=expert_bytes,
            gemm_groups=up_groups,
            expert_gemms=up_experts,
        ),
        "ffn_act": OpCost(
            flop=routed_tokens * (ffn_act_flop * d_e / tp),
            bytes_moved=routed_tokens * ((d_in + d_e) / tp * act),
        ),
        "ffn_down": OpCost(
            flop=routed_tokens * (2.0 * d_e * h / tp),
            bytes_moved=experts_read * (d_e * h / tp * expert_bytes) + down_io,
            kernels=float(len(down_gemms)),
            gemms=down_gemms,
            gemm_weight_bytes=expert_bytes,
            gemm_groups=down_groups,
            expert_gemms=down_experts,
        ),
    }


def _mla_attention_ops(
    mla: MLAShape,
    *,
    batch: Num,
    query_tokens: Num,
    context_tokens: Num,
    hidden_size: Num,
    num_heads: Num,
    tensor_parallel: Num,
    weight_bytes: Num,
    activation_bytes: Num,
    kv_cache_bytes: Num,
    prefill: bool,
) -> dict[str, OpCost]:
    """qkv, score, softmax, context and out_proj of one MLA layer on one rank (module docstring)."""
    h, tp, act = hidden_size, tensor_parallel, activation_bytes
    heads = num_heads / tp
    r_kv, rope, nope, d_v = mla.kv_lora_rank, mla.qk_rope_head_dim, mla.qk_nope_head_dim, mla.v_head_dim
    tokens = batch * query_tokens
    latent = r_kv + rope  # cached per token and layer
    if mla.q_lora_rank is None:
        q_params: Num = h * heads * (nope + rope)
    else:
        q_params = h * mla.q_lora_rank + mla.q_lora_rank * heads * (nope + rope)  # q_a replicated, q_b split
    kv_a = h * latent  # replicated
    kv_b = r_kv * heads * (nope + d_v)  # W_UK and W_UV of this rank's heads
    tokens_context = tokens * context_tokens
    latent_read = (batch * context_tokens) * (latent * kv_cache_bytes)  # one latent per token, all heads
    if prefill:  # decompress K and V, then ordinary attention over a heads
        qkv_flop = tokens * (2.0 * (q_params + kv_a)) + tokens_context / query_tokens * (2.0 * kv_b)
        score_flop: Num = tokens_context * (2.0 * heads * (nope + rope))
        context_flop: Num = tokens_context * (2.0 * heads * d_v)
        out_flop = tokens * (2.0 * heads * d_v * h)
    else:  # absorbed: W_UK into the query, W_UV after the context
        qkv_flop = tokens * (2.0 * (q_params + kv_a) + 2.0 * heads * nope * r_kv)
        score_flop = tokens_context * (2.0 * heads * latent)
        context_flop = tokens_context * (2.0 * heads * r_kv)
        out_flop = tokens * (2.0 * heads * r_kv * d_v + 2.0 * heads * d_v * h)
    scores = tokens_context * heads
    scores_bytes = scores * act
    q_bytes = tokens * (heads * latent * act)
    return {
        "qkv": OpCost(
            flop=qkv_flop,
            bytes_moved=(q_params + kv_a + kv_b) * weight_bytes
            + tokens * (h * act + heads * latent * act + latent * kv_cache_bytes),
            kernels=4.0,  # q_a, q_b, kv_a, the W_UK absorption
        ),
        "score": OpCost(flop=score_flop, bytes_moved=q_bytes + latent_read + scores_bytes),
        "softmax": OpCost(flop=scores * SOFTMAX_FLOP_PER_ELEMENT, bytes_moved=scores_bytes * 2.0),
        "context": OpCost(flop=context_flop, bytes_moved=scores_bytes + q_bytes),  # the latent is read once
        "out_proj": OpCost(
            flop=out_flop,
            bytes_moved=heads * d_v * h * weight_bytes + tokens * (heads * d_v * act + h * act),
            kernels=2.0,  # the W_UV absorption and o_proj
        ),
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
        if op.exchange is not None:
            continue  # priced below, once the layer's compute is known
        if op_class == "link":
            link_s = all_reduce_time(
                bytes_per_rank=op.link_bytes,
                ranks=tensor_parallel,
                bandwidth_bytes_per_s=link_bandwidth_bytes_per_s,
                latency_s=link_latency_s,
            )
            if not (isinstance(op.repeats, float) and op.repeats == 1.0):
                link_s = op.repeats * link_s
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
        if not (isinstance(op.repeats, float) and op.repeats == 1.0):
            cost = OpTime(
                time_s=op.repeats * cost.time_s,
                compute_s=op.repeats * cost.compute_s,
                memory_s=op.repeats * cost.memory_s,
                overhead_s=op.repeats * cost.overhead_s,
            )
        priced[name] = PricedOp(
            time_s=cost.time_s, compute_s=cost.compute_s, memory_s=cost.memory_s, link_s=0.0, cost=cost
        )
    exchanges = {name: op.exchange for name, op in ops.items() if op.exchange is not None}
    if not exchanges:
        return priced
    return _with_exchange_times(priced, ops, exchanges)


def _with_exchange_times(
    priced: dict[str, PricedOp], ops: dict[str, OpCost], exchanges: dict[str, ExchangeShape]
) -> dict[str, PricedOp]:
    """The expert all-to-alls on their links (`expert_all_to_all_time`, the mean layer's share of an MoE
    layer's), in the ops' order. With two-batch overlap each op's time is its share of what the all-to-alls add
    beyond the layer's compute (`overlapped_time`: the prefill kernels take PREFILL_EXCHANGE_SM_SHARE of the
    SMs, the decode ones none); its link time stays the whole all-to-all."""
    full: dict[str, Num] = {}
    for name, shape in exchanges.items():
        links = shape.links
        full[name] = (
            ops[name].repeats
            * shape.layer_share
            * expert_all_to_all_time(
                bytes_per_rank=shape.bytes_per_rank,
                ranks=shape.ranks,
                ranks_per_node=links.ranks_per_node,
                nvlink_bandwidth_bytes_per_s=links.nvlink_bandwidth_bytes_per_s,
                network_bandwidth_bytes_per_s=links.network_bandwidth_bytes_per_s,
                experts_per_token=shape.experts_per_token,
                node_limit=links.node_limit,
                forwarded=shape.prefill,
            )
        )
    first = next(iter(exchanges.values()))
    communication: Num = sum(full.values(), start=0.0 * np.asarray(next(iter(full.values()))))
    if first.links.two_batch_overlap:
        compute: Num = 0.0
        for name, op_priced in priced.items():
            if OP_CLASS[name] != "link":
                compute = compute + op_priced.time_s
        sm_share = PREFILL_EXCHANGE_SM_SHARE if first.prefill else 0.0
        added = overlapped_time(communication_s=communication, compute_s=compute, sm_share=sm_share)
        exposed = np.where(np.asarray(communication) > 0.0, added / np.maximum(communication, 1e-30), 0.0)
    else:
        exposed = np.ones_like(np.asarray(communication, dtype=np.float64))
    out: dict[str, PricedOp] = {}
    for name in ops:
        if name in full:
            link_s = full[name]
            zero = 0.0 * np.asarray(link_s)
            out[name] = PricedOp(time_s=exposed * link_s, compute_s=zero, memory_s=zero, link_s=link_s)
        else:
            out[name] = priced[name]
    return out


def _matrix_time(device: Device, op: OpCost) -> OpTime:
    """The op's GEMMs on the fitted GEMM model (the roofline without one); a grouped GEMM as one launch of its
    problems, each GEMM counted at its share."""
    if device.gemm is None or not op.gemms:
        return device.op_time_s(op.flop, op.bytes_moved, kernels=op.kernels, op_class="matrix")
    times = [
        device.gemm_time_s(m, n, k, b_bytes=op.gemm_weight_bytes, groups=groups, expert=expert)
        for (m, n, k), groups, expert in zip(op.gemms, _gemm_groups(op), _expert_gemms(op), strict=True)
    ]
    if not op.gemm_shares and len(times) == 1:
        return times[0]
    shares = _gemm_shares(op)

    def total(part: str) -> Num:
        parts = (
            getattr(t, part) if isinstance(s, float) and s == 1.0 else s * getattr(t, part)
            for s, t in zip(shares, times, strict=True)
        )
        return sum(parts, start=0.0 * times[0].time_s)

    return OpTime(
        time_s=total("time_s"), compute_s=total("compute_s"), memory_s=total("memory_s"), overhead_s=total("overhead_s")
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
    kv_heads_read = _decode_kv_heads_read(device, shape)
    decode = device.decode_attention_time_s(
        shape.batch,
        kv_heads_read,
        shape.context_tokens,
        shape.head_dim,
        shape.kv_cache_bytes,
        tensors_read=2.0 if fused else 1.0,
    )
    if decode is not None:
        return _half(decode) if fused else decode
    kv_head_bytes = shape.batch * shape.head_dim * shape.context_tokens * shape.kv_cache_bytes  # K (or V) of one head
    if not fused:
        extra_read = (kv_heads_read - shape.kv_heads) * kv_head_bytes
        return device.op_time_s(op.flop, op.bytes_moved + extra_read, kernels=op.kernels, op_class="attention")
    kv_bytes = 2.0 * kv_heads_read * kv_head_bytes
    whole = device.op_time_s(2.0 * op.flop, kv_bytes + shape.io_bytes, kernels=1.0, op_class="attention")
    return _half(whole)


def _decode_kv_heads_read(device: Device, shape: AttentionShape) -> Num:
    """KV heads a decode step streams per rank: each once when the stack's kernel shares a KV head across
    the query heads of its group (GQA), once per query head otherwise (a kernel without GQA sharing)."""
    assert device.stack is not None
    return shape.kv_heads if device.stack.decode_attention_shares_kv_heads else shape.heads


def _half(t: OpTime) -> OpTime:
    """Half of one kernel's time (score and context share a fused attention kernel)."""
    return OpTime(
        time_s=t.time_s / 2.0, compute_s=t.compute_s / 2.0, memory_s=t.memory_s / 2.0, overhead_s=t.overhead_s / 2.0
    )


def kv_cache_bytes_per_token(
    *,
    num_layers: Num,
    hidden_size: Num,
    num_heads: Num,
    num_kv_heads: Num,
    kv_cache_bytes: Num,
    head_dim: Num | None = None,
    mla: MLAShape | None = None,
) -> Num:
    """K and V of one token over all layers: 2 * L * a_kv * d_h * w_kv bytes.

    With multi-head latent attention the cache holds one latent per layer instead:
    L * (kv_lora_rank + qk_rope_head_dim) * w_kv bytes, shared by every head.
    """
    if mla is not None:
        return num_layers * (mla.kv_lora_rank + mla.qk_rope_head_dim) * kv_cache_bytes
    d_h = hidden_size / num_heads if head_dim is None else head_dim
    return 2.0 * num_layers * num_kv_heads * d_h * kv_cache_bytes
