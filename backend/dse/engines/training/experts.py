"""Mixture-of-experts training: expert GEMMs, expert parallelism (EP) and its all-to-alls, and the
attention projections of models whose heads are not hidden/heads wide (Qwen3) or latent (MLA).

Layers: the first `L_d` are dense (FFN of width f), the other `L_moe` are MoE layers. An MoE layer runs, per GPU
and micro-batch of T = b*s/n tokens (Ring / Ulysses split s over n):
    router          T x h -> E                        (a GEMM, not split by TP)
    shared experts  T x h -> S*d_e (and back)         (one FFN of S*d_e, split by TP like the dense FFN)
    routed experts  E/EP experts, each a GEMM of m_e = T*k*EP/E * load rows, h -> d_e/t (and back)
where `load` is the busiest expert's tokens over the mean (`expert_load_imbalance`; with a capacity factor
and padding every expert runs capacity x mean). The routed experts are priced at their per-expert shape
(a grouped GEMM is E/EP GEMMs of m_e rows), through the same `Device.gemm_time_s` as every dense GEMM.
The engine prices one mean layer: FFN times are the layer mix's mean (L_d dense, L_moe MoE).

Expert parallelism follows Megatron-Core (NVIDIA/Megatron-LM megatron/core/transformer/moe/README.md @ 022bcb5,
"MoE Parallel Folding": rank order tp-cp-ep-dp-pp, "the EP group in MoE is a sub-group of DP in Attention";
`--expert-tensor-parallel-size` defaults to the TP size): an EP group is EP consecutive ranks of the data- and
context-parallel dimension (stride t), so EP must divide d*n; the expert-data-parallel group (which reduces the
expert gradients and over which the distributed optimizer shards the expert states) is the d*n/EP ranks
t*EP apart. Each MoE layer's token dispatch and combine are all-to-alls over the EP group (the `alltoall`
dispatcher): 2 in the forward, 2 in the backward (2 more with full recomputation), each rank sending the
hidden vectors of its T/t tokens (SP-split inside TP) times k, load x mean, in bf16.

Multi-head latent attention (DeepSeek-V2 paper, Section 2.1): queries h -> r_q -> a*(d_nope + d_rope), keys and
values h -> r_kv + d_rope -> a*(d_nope + d_v), output a*d_v -> h; the down-projections are whole on every TP rank,
the up-projections and the output split by TP. Attention scores use d_nope + d_rope per head, the context d_v.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from dse.engines.collectives import all_reduce_time, all_to_all_time, nodes_per_token, overlapped_time
from dse.engines.device import Device
from dse.engines.training.compute import Gemm, LayerGemms, gemm_pass_times
from dse.engines.training.inputs import Array, ModelArrays, as_array
from dse.engines.training.links import group_link
from dse.engines.transformer import llm_parameter_breakdown
from dse.specs.common import Num
from dse.specs.llm import LLMSpec

#: bf16 hidden vectors cross the EP all-to-alls.
DISPATCH_BYTES_PER_ELEMENT = 2.0
#: Token permutation before and unpermutation after the experts (Megatron-Core `--moe-permute-fusion`): each
#: reads and writes the k copies of every token's hidden vector once (2 + 2 bytes per element, each way).
PERMUTE_BYTES_PER_ELEMENT = 2.0 * (2.0 + 2.0)
#: The router's element-wise kernels after its GEMM, in fp32 (gating stays out of fp8: arXiv:2412.19437 Section
#: 3.3.1). Per score (E per token): the affinity function (sigmoid for DeepSeek-V3, Section 2.1.2; softmax
#: elsewhere) reads and writes it (4 + 4) and the top-k selection reads it again (4). Per chosen expert (k per
#: token): the selection writes its index and gate (8 + 4) and the normalisation among the chosen reads and
#: writes the gate (4 + 4). Three kernels (affinity, top-k, normalisation); the backward moves twice as much.
ROUTER_BYTES_PER_SCORE = (4.0 + 4.0) + 4.0
ROUTER_BYTES_PER_CHOICE = (8.0 + 4.0) + (4.0 + 4.0)
ROUTER_KERNELS = 3.0


def moe_model_arrays(cls: type[ModelArrays], spec: LLMSpec) -> ModelArrays:
    """`ModelArrays` of an MoE, latent-attention or odd-head-width architecture (exact counts of
    `dse.engines.transformer.llm_parameter_breakdown`); the routed experts are split out of the layer."""
    params = llm_parameter_breakdown(spec)
    h, L, V = as_array(spec.hidden_size), as_array(spec.num_layers), as_array(spec.vocab_size)
    matrices = 3.0 if spec.ffn_activation == "swiglu" else 2.0
    bias = 1.0 if spec.linear_bias else 0.0
    d_e = as_array(spec.expert_width) if spec.is_moe else np.zeros(())
    one_expert = matrices * h * d_e + bias * (d_e * (matrices - 1.0) + h)
    routed = as_array(spec.moe_layers) * as_array(spec.num_experts) * one_expert
    router = as_array(params.router)
    positions = as_array(spec.max_context_tokens) if spec.position_embedding == "learned" else 0.0
    layer_norms = as_array(params.layer_norms)
    mla = spec.is_mla
    head_dim = spec.qk_nope_head_dim if mla else spec.attention_head_dim
    return cls(
        hidden_size=h,
        num_layers=L,
        num_heads=as_array(spec.num_heads),
        num_kv_heads=as_array(spec.num_kv_heads),
        ffn_hidden_size=as_array(spec.ffn_hidden_size),
        vocab_size=V,
        gated_ffn=1.0 if spec.ffn_activation == "swiglu" else 0.0,
        tied_embeddings=1.0 if spec.tied_embeddings else 0.0,
        layer_sharded_params=as_array(params.layer_attention) + (as_array(params.ffn) - routed) / L,
        layer_replicated_params=layer_norms + router / L,
        word_embedding_params=V * h,
        position_embedding_params=positions * h,
        final_norm_params=as_array(params.norms) - L * layer_norms,
        total_params=as_array(params.total),
        num_experts=float(spec.num_experts),
        experts_per_token=float(spec.experts_per_token),
        shared_experts=float(spec.num_shared_experts),
        expert_ffn_hidden_size=d_e,
        moe_layer_fraction=as_array(spec.moe_layers) / L,
        layer_expert_params=routed / L,
        inactive_params=as_array(params.total) - as_array(params.activated),
        attention_head_dim=float(head_dim or 0.0),
        q_lora_rank=float(spec.q_lora_rank or 0.0),
        kv_lora_rank=float(spec.kv_lora_rank or 0.0),
        qk_rope_head_dim=float(spec.qk_rope_head_dim or 0.0),
        v_head_dim=float(spec.v_head_dim or 0.0),
    )


def is_moe(model: ModelArrays) -> bool:
    """Whether any model of the call has experts (a dense call never enters this module's pricing)."""
    return bool(np.any(as_array(model.num_experts) > 0))


def has_own_attention(model: ModelArrays) -> bool:
    """Whether any model of the call has latent attention or heads not hidden/heads wide."""
    return bool(np.any(as_array(model.kv_lora_rank) > 0) or np.any(as_array(model.attention_head_dim) > 0))


def load_factor(plan: Any) -> Array:
    """The busiest expert's tokens over the mean: the capacity with padding, else the load imbalance."""
    capacity = as_array(plan.expert_capacity_factor)
    return np.asarray(np.where(capacity > 0, capacity, as_array(plan.expert_load_imbalance)))


@dataclass(frozen=True)
class AttentionShapes:
    """The attention's weight GEMMs and the layer's GEMMs with its scores, context and head width replaced."""

    weights: list[Gemm]
    layer: LayerGemms
    #: Forward FLOP of the projections and of the scores + context, per GPU.
    projection_flop: Array
    core_flop: Array
    #: MLA's query and KV up-projections (no rows elsewhere), and the width of the latent vectors' RMSNorms
    #: per token (r_q + r_kv; 0 without MLA): what DeepSeek-V3 recomputes in the backward with the layer's norms.
    up_projections: list[Gemm]
    latent_norm_width: Array


def _flop(gemms: list[Gemm]) -> Array:
    return np.asarray(sum(2.0 * g.m * g.n * g.k * g.count for g in gemms))


def attention_shapes(*, g: LayerGemms, model: ModelArrays, b: Num, s: Num, t: Num, n: Num) -> AttentionShapes:
    """MLA projections (see the module docstring) or GQA with `attention_head_dim`-wide heads, where set;
    the ordinary h/a heads of `compute.layer_gemms` elsewhere."""
    h, a, a_kv = as_array(model.hidden_size), as_array(model.num_heads), as_array(model.num_kv_heads)
    tokens = as_array(b) * as_array(s) / as_array(n)
    t = as_array(t)
    one = np.ones(())
    mla = as_array(model.kv_lora_rank) > 0
    own = as_array(model.attention_head_dim) > 0
    d = np.where(own, as_array(model.attention_head_dim), h / a)
    rope, r_q, r_kv = as_array(model.qk_rope_head_dim), as_array(model.q_lora_rank), as_array(model.kv_lora_rank)
    d_qk = np.where(mla, d + rope, d)
    d_v = np.where(mla, as_array(model.v_head_dim), d)
    # GQA: one fused QKV GEMM and the output projection; MLA: five GEMMs. A call mixing both (a sweep over
    # models) prices both lists with zero rows where they do not apply (a launch each, a small error).
    any_mla, all_mla = bool(np.any(mla)), bool(np.all(mla))
    rows_gqa = np.where(mla, 0.0, tokens) if any_mla else tokens
    rows_mla = np.where(mla, tokens, 0.0) if not all_mla else tokens
    weights: list[Gemm] = []
    up_projections: list[Gemm] = []
    if not all_mla:
        weights.append(Gemm(rows_gqa, (a * d + 2.0 * a_kv * d) / t, h, one))
    if any_mla:
        has_q_rank = r_q > 0
        weights += [
            Gemm(np.where(has_q_rank, rows_mla, 0.0), r_q, h, one),  # query down (whole on each TP rank)
            Gemm(rows_mla, a * d_qk / t, np.where(has_q_rank, r_q, h), one),  # query up (or the full query)
            Gemm(rows_mla, r_kv + rope, h, one),  # KV down and the shared RoPE key
            Gemm(rows_mla, a * (d + d_v) / t, r_kv, one),  # K (no-RoPE part) and V up
        ]
        # the full query (no query rank) is no up-projection
        up_projections = [dataclasses.replace(weights[-3], m=np.where(has_q_rank, rows_mla, 0.0)), weights[-1]]
    weights.append(Gemm(tokens, h, a * d_v / t, one))  # output projection
    heads = a / t
    rows = as_array(b) * heads * as_array(s) / as_array(n)
    scores = Gemm(rows, as_array(s), d_qk, one)
    context = Gemm(rows, d_v, as_array(s), one)
    layer = dataclasses.replace(g, scores=scores, context=context, head_dim=np.asarray((d_qk + d_v) / 2.0))
    return AttentionShapes(
        weights=weights,
        layer=layer,
        projection_flop=_flop(weights),
        core_flop=_flop([scores, context]),
        up_projections=up_projections,
        latent_norm_width=np.asarray(np.where(mla, r_q + r_kv, 0.0)),
    )


@dataclass(frozen=True)
class FfnTimes:
    """The mean layer's FFN (dense and MoE layers in their mix), per GPU and micro-batch."""

    forward_s: Array
    backward_s: Array
    forward_flop: Array
    #: Sums over the GEMMs of rows x inner and rows x outer (the fp8 casts' elements), and their count.
    cast_in_elements: Array
    cast_out_elements: Array
    casts: float
    #: Element-wise FFN width (activation function) of the mean layer, and its permutation bytes.
    activation_width: Array
    permute_bytes: Array
    #: The router's element-wise bytes (`ROUTER_BYTES_PER_SCORE`, `ROUTER_BYTES_PER_CHOICE`) of the mean layer.
    router_bytes: Array


def ffn_times(
    *,
    device: Device,
    model: ModelArrays,
    b: Num,
    s: Num,
    t: Num,
    n: Num,
    expert_parallel: Num,
    load: Num,
    dense_ffn: tuple[Gemm, Gemm],
) -> FfnTimes:
    """Dense FFN x (1 - MoE share) + (router + shared experts + E/EP routed experts) x MoE share."""
    h, t, ep = as_array(model.hidden_size), as_array(t), as_array(expert_parallel)
    tokens = as_array(b) * as_array(s) / as_array(n)
    E, k = as_array(model.num_experts), as_array(model.experts_per_token)
    S, d_e = as_array(model.shared_experts), as_array(model.expert_ffn_hidden_size)
    frac = as_array(model.moe_layer_fraction)
    gate = np.where(as_array(model.gated_ffn) > 0, 2.0, 1.0)
    one = np.ones(())
    safe_e = np.maximum(E, 1.0)
    m_e = tokens * k * ep / safe_e * as_array(load)  # rows of the busiest expert's GEMM
    shared_rows = np.where(S > 0, tokens, 0.0)
    local_experts = E / ep
    gemms = [
        Gemm(tokens, safe_e, h, one),  # router
        Gemm(m_e, gate * d_e / t, h, one),  # one routed expert
        Gemm(m_e, h, d_e / t, one),
    ]
    weights: list[Num] = [frac, frac * local_experts, frac * local_experts]
    if bool(np.any(frac < 1.0)):  # dense FFN layers before the first MoE layer
        gemms += list(dense_ffn)
        weights += [1.0 - frac, 1.0 - frac]
    if bool(np.any(S > 0)):
        gemms += [Gemm(shared_rows, gate * S * d_e / t, h, one), Gemm(shared_rows, h, S * d_e / t, one)]
        weights += [frac, frac]
    times = gemm_pass_times(device, gemms)
    forward = sum(w * f for w, (f, _) in zip(weights, times, strict=True))
    backward = sum(w * bw for w, (_, bw) in zip(weights, times, strict=True))
    flop = sum(w * 2.0 * g.m * g.n * g.k for w, g in zip(weights, gemms, strict=True))
    cast_in = sum(w * g.m * g.k for w, g in zip(weights, gemms, strict=True))
    cast_out = sum(w * g.m * g.n for w, g in zip(weights, gemms, strict=True))
    return FfnTimes(
        forward_s=np.asarray(forward),
        backward_s=np.asarray(backward),
        forward_flop=np.asarray(flop),
        cast_in_elements=np.asarray(cast_in),
        cast_out_elements=np.asarray(cast_out),
        casts=float(len(gemms)),
        activation_width=activation_ffn_width(model, load),
        permute_bytes=np.asarray(frac * PERMUTE_BYTES_PER_ELEMENT * tokens * k * as_array(load) * h / t),
        router_bytes=np.asarray(frac * tokens * (ROUTER_BYTES_PER_SCORE * E + ROUTER_BYTES_PER_CHOICE * k)),
    )


@dataclass(frozen=True)
class ExpertCommunication:
    """EP all-to-alls of the mean layer per micro-batch (zero without experts or with EP = 1)."""

    #: One dispatch (or combine) of one MoE layer.
    one_all_to_all_s: Array
    #: The mean layer's forward part (dispatch + combine) and all of them (forward, backward, recomputation).
    forward_per_layer_s: Array
    per_layer_s: Array
    #: Bytes one GPU sends off itself per MoE layer and micro-batch (forward and backward).
    bytes_per_moe_layer: Array


#: DeepSeek-V3's fp8 dispatch: one byte per element and an fp32 scale per 1x128 tile of a token's activation
#: ("per-token per-128-channel", arXiv:2412.19437 Section 3.3.2). Section 3.3.3 ("Low-Precision Communication"):
#: the activation before the MoE up-projections and the gradient before the down-projections go in fp8, both
#: combines stay bf16.
FP8_DISPATCH_BYTES_PER_ELEMENT = 1.0 + 4.0 / 128.0


def expert_communication(
    *,
    cluster: Any,
    model: ModelArrays,
    b: Num,
    s: Num,
    t: Num,
    n: Num,
    expert_parallel: Num,
    load: Num,
    full: Any,
    node_limit: Num = 0.0,
    dedup: Num = 0.0,
    fp8_dispatch: Num = 0.0,
) -> ExpertCommunication:
    """The EP all-to-alls. Plain (`dedup` 0): each of a GPU's k routed copies goes to its expert's GPU, an
    all-to-all over the EP group. Deduplicated (DeepSeek-V3's kernels, arXiv:2412.19437 Section 3.2.2: "first
    transmitted via IB to the GPUs with the same in-node index on its target nodes ... instantly forwarded
    via NVLink to specific GPUs that host their target experts"; IB and NVLink "fully overlapped"): a token
    crosses the network once per remote node it reaches (`nodes_per_token` x (N-1)/N, Section 2.1.2's
    node-limited routing bounding the nodes), through the GPU's own network share, while NVLink carries the
    (G-1)/G of its copies bound for the node's other GPUs; the longer of the two, plus a latency per peer node
    and per peer GPU in the node. With `fp8_dispatch` two of the four all-to-alls send
    `FP8_DISPATCH_BYTES_PER_ELEMENT` per element."""
    ep, t = as_array(expert_parallel), as_array(t)
    tokens = as_array(b) * as_array(s) / as_array(n)
    link = group_link(cluster=cluster, stride=t, size=ep, pattern="all_to_all")
    k = as_array(model.experts_per_token)
    elements = tokens / t * k * as_array(load) * as_array(model.hidden_size)  # the routed copies' elements
    fp8 = as_array(fp8_dispatch) > 0
    buffer = DISPATCH_BYTES_PER_ELEMENT * elements
    if bool(np.any(fp8)):  # bytes per element of the mean all-to-all: two of the four in fp8
        buffer = np.where(fp8, (FP8_DISPATCH_BYTES_PER_ELEMENT + DISPATCH_BYTES_PER_ELEMENT) / 2.0, 2.0) * elements
    one = all_to_all_time(
        bytes_per_rank=buffer, ranks=ep, bandwidth_bytes_per_s=link.bandwidth_bytes_per_s, latency_s=link.latency_s
    )
    sent = (ep - 1.0) / np.maximum(ep, 1.0) * buffer  # bytes one GPU sends off itself, per all-to-all
    if bool(np.any(as_array(dedup) > 0)):
        members = np.clip(as_array(cluster.gpus_per_node) / t, 1.0, np.maximum(ep, 1.0))  # EP ranks per node
        nodes = np.maximum(ep / members, 1.0)
        reached = nodes_per_token(experts_per_token=k, nodes=nodes, node_limit=node_limit)
        network_bytes = buffer / k * reached * (nodes - 1.0) / nodes
        nvlink_bytes = buffer * (members - 1.0) / members
        share = as_array(cluster.inter_node_bandwidth_per_gpu_bytes_per_s)
        intra = as_array(cluster.intra_node_bandwidth_bytes_per_s)
        latency = (nodes - 1.0) * as_array(cluster.inter_node_latency_s)
        latency = latency + (members - 1.0) * as_array(cluster.intra_node_latency_s)
        hierarchical = np.maximum(network_bytes / share, nvlink_bytes / intra) + latency
        deduplicated = (as_array(dedup) > 0) & (nodes > 1.0)
        one = np.where(deduplicated, hierarchical, one)
        sent = np.where(deduplicated, network_bytes + nvlink_bytes, sent)
    one = np.where(ep > 1, one, 0.0)
    frac = as_array(model.moe_layer_fraction)
    count = 4.0 + 2.0 * np.asarray(full, dtype=np.float64)
    return ExpertCommunication(
        one_all_to_all_s=np.asarray(one),
        forward_per_layer_s=np.asarray(frac * 2.0 * one),
        per_layer_s=np.asarray(frac * count * one),
        bytes_per_moe_layer=np.asarray(np.where(ep > 1, 4.0 * sent, 0.0)),
    )


#: Share of the GPU's SMs the all-to-alls take while they overlap compute: DeepSeek-V3 dedicates 20 of the
#: H800's 132 SMs to communication, "only 20 SMs ... to achieve full utilization of bandwidths for all-to-all"
#: (DeepSeek-AI, DeepSeek-V3 Technical Report, arXiv:2412.19437, Section 3.2.2; 132 SMs: NVIDIA H100 SXM
#: architecture whitepaper). Without overlap the all-to-alls add their whole time.
OVERLAP_SM_SHARE = 20.0 / 132.0


def overlapped_all_to_all_s(*, all_to_all_s: Num, compute_s: Num, overlap: Num) -> Array:
    """What a stage's all-to-alls add per micro-batch. Overlapped (DualPipe pairs one micro-batch's forward
    chunk with another's backward chunk so that "both all-to-all and PP communication can be fully hidden",
    report Section 3.2.1): the part longer than the compute left on the other SMs, else the SMs' share of it;
    not overlapped: all of it."""
    comm = as_array(all_to_all_s)
    hidden = overlapped_time(communication_s=comm, compute_s=compute_s, sm_share=OVERLAP_SM_SHARE)
    return np.asarray(np.where(as_array(overlap) > 0, hidden, comm))


def expert_data_parallel_group(*, zero_group: Num, expert_parallel: Num) -> Array:
    """Ranks an expert's gradients are reduced over and its optimizer states sharded over: DP*CP/EP."""
    return np.asarray(np.maximum(as_array(zero_group) / as_array(expert_parallel), 1.0))


def expert_gradient_sync_s(*, cluster: Any, grad_bytes: Num, t: Num, expert_parallel: Num, zero_group: Num) -> Array:
    """The expert gradients' all-reduce (ZeRO-1/2: reduce-scatter + all-gather, the same traffic) over the
    expert-data-parallel group (ranks t*EP apart), as one ring collective."""
    group = expert_data_parallel_group(zero_group=zero_group, expert_parallel=expert_parallel)
    link = group_link(cluster=cluster, stride=as_array(t) * as_array(expert_parallel), size=group, pattern="ring")
    time = all_reduce_time(
        bytes_per_rank=grad_bytes,
        ranks=group,
        bandwidth_bytes_per_s=link.bandwidth_bytes_per_s,
        latency_s=link.latency_s,
    )
    return np.asarray(np.where(as_array(grad_bytes) > 0, time, 0.0))


def expert_params_per_gpu(*, model: ModelArrays, layers: Num, t: Num, expert_parallel: Num) -> Array:
    """Routed-expert parameters a GPU holds for its stage's layers: split by TP (ETP = TP) and by EP."""
    return np.asarray(
        as_array(layers) * as_array(model.layer_expert_params) / (as_array(t) * as_array(expert_parallel))
    )


def attention_width(model: ModelArrays) -> Array:
    """a*(d_qk + d_v)/2: what replaces h in the attention-score FLOP (h for h/a-wide heads)."""
    h, a = as_array(model.hidden_size), as_array(model.num_heads)
    mla = as_array(model.kv_lora_rank) > 0
    d = np.where(as_array(model.attention_head_dim) > 0, as_array(model.attention_head_dim), h / a)
    d_qk = np.where(mla, d + as_array(model.qk_rope_head_dim), d)
    d_v = np.where(mla, as_array(model.v_head_dim), d)
    return np.asarray(a * (d_qk + d_v) / 2.0)


def activation_ffn_width(model: ModelArrays, load: Num) -> Array:
    """FFN width whose activations a token keeps in the mean layer: f in dense layers, (k*load + S)*d_e in
    MoE layers (each routed copy and each shared expert keeps its own FFN activations)."""
    frac = as_array(model.moe_layer_fraction)
    k, S = as_array(model.experts_per_token), as_array(model.shared_experts)
    d_e = as_array(model.expert_ffn_hidden_size)
    return np.asarray((1.0 - frac) * as_array(model.ffn_hidden_size) + frac * (k * as_array(load) + S) * d_e)


def dispatched_bytes_per_layer(*, model: ModelArrays, b: Num, s: Num, t: Num, n: Num, load: Num) -> Array:
    """bf16 bytes of the k routed copies of a GPU's tokens (the experts' input, kept for their weight
    gradient), for the mean layer: the MoE share x T*k*load*h/t."""
    tokens = as_array(b) * as_array(s) / as_array(n)
    copies = tokens * as_array(model.experts_per_token) * as_array(load) * as_array(model.hidden_size) / as_array(t)
    return np.asarray(as_array(model.moe_layer_fraction) * DISPATCH_BYTES_PER_ELEMENT * copies)


__all__ = [
    "AttentionShapes",
    "ExpertCommunication",
    "FfnTimes",
    "activation_ffn_width",
    "attention_shapes",
    "attention_width",
    "dispatched_bytes_per_layer",
    "expert_communication",
    "expert_data_parallel_group",
    "expert_gradient_sync_s",
    "expert_params_per_gpu",
    "ffn_times",
    "has_own_attention",
    "is_moe",
    "load_factor",
    "moe_model_arrays",
    "nodes_per_token",
    "overlapped_all_to_all_s",
]
