"""Exact shapes of a decoder-only transformer: parameter counts per component.

Counts follow the architecture directly (GQA, gated FFN, biases, norms, learned positions,
tied or untied embeddings, mixture-of-experts FFNs, multi-head latent attention) rather than the
12*L*h^2 approximation. Two totals: `total` (every stored parameter) and `activated` (the
parameters one token goes through: attention, the dense FFNs, k routed + the shared experts and
the router of each MoE layer, norms, embeddings and head). For a dense model they are equal.

Mixture of experts (L layers, the first L_d dense of width d_ff, the other L_moe = L - L_d with E
routed experts of width d_e, k per token, S shared, gated: 3*h*d_e each):

    routed     L_moe * E * 3*h*d_e          activated  L_moe * k * 3*h*d_e
    shared     L_moe * S * 3*h*d_e          (always activated)
    router     L_moe * (h*E [+ E bias])     (always activated)

Multi-head latent attention (DeepSeek-V2 paper, section 2.1; a heads, ranks r_q and r_kv, per-head
widths d_nope, d_rope, d_v):

    q          h*r_q + r_q (norm) + r_q*a*(d_nope + d_rope)   (h*a*(d_nope + d_rope) without r_q)
    kv         h*(r_kv + d_rope) + r_kv (norm) + r_kv*a*(d_nope + d_v)
    out        a*d_v*h
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.specs.common import Num
from dse.specs.llm import LLMSpec


@dataclass(frozen=True)
class ParameterBreakdown:
    """Parameters per component of the whole model, and of one layer (counts, broadcast over inputs)."""

    attention: Num
    ffn: Num
    norms: Num
    embeddings: Num
    lm_head: Num
    layer_attention: Num
    layer_ffn: Num
    layer_norms: Num
    #: Router weights of all MoE layers (0 for a dense model); included in `total`.
    router: Num = 0.0
    #: FFN parameters one token goes through over all layers (= ffn for a dense model).
    ffn_activated: Num | None = None

    @property
    def per_layer(self) -> Num:
        """Attention + FFN + the layer's two norms, for one layer."""
        return self.layer_attention + self.layer_ffn + self.layer_norms

    @property
    def total(self) -> Num:
        return self.attention + self.ffn + self.router + self.norms + self.embeddings + self.lm_head

    @property
    def activated(self) -> Num:
        """Parameters one token goes through (k routed experts of each MoE layer, not all E)."""
        ffn = self.ffn if self.ffn_activated is None else self.ffn_activated
        return self.attention + ffn + self.router + self.norms + self.embeddings + self.lm_head


def parameter_breakdown(
    *,
    hidden_size: Num,
    num_layers: Num,
    num_heads: Num,
    num_kv_heads: Num,
    ffn_hidden_size: Num,
    vocab_size: Num,
    gated_ffn: bool,
    tied_embeddings: bool,
    learned_positions: Num,
    layernorm: bool,
    linear_bias: bool,
    head_dim: Num | None = None,
    qk_norm: bool = False,
    moe: MoEShape | None = None,
    mla: MLAShape | None = None,
) -> ParameterBreakdown:
    """Exact parameter counts; every numeric argument may be an array.

    learned_positions is the number of learned position embeddings (0 for RoPE); head_dim None =
    hidden_size / num_heads; moe / mla: the mixture-of-experts FFNs and latent attention, if any.
    """
    head_dim = hidden_size / num_heads if head_dim is None else head_dim
    q_width = num_heads * head_dim
    kv_width = 2.0 * num_kv_heads * head_dim
    bias = 1.0 if linear_bias else 0.0
    norm_params = (2.0 if layernorm else 1.0) * hidden_size
    if mla is not None:
        layer_attention = mla_attention_params(hidden_size=hidden_size, num_heads=num_heads, mla=mla)
        layer_norms = 2.0 * norm_params
    else:
        qkv = hidden_size * (q_width + kv_width) + bias * (q_width + kv_width)
        out_proj = q_width * hidden_size + bias * hidden_size
        layer_attention = qkv + out_proj
        layer_norms = 2.0 * norm_params + (2.0 * head_dim if qk_norm else 0.0)
    ffn_matrices = 3.0 if gated_ffn else 2.0

    def ffn_of(width: Num) -> Num:
        return ffn_matrices * hidden_size * width + bias * (width * (ffn_matrices - 1.0) + hidden_size)

    embeddings = vocab_size * hidden_size + learned_positions * hidden_size
    lm_head = 0.0 * vocab_size if tied_embeddings else vocab_size * hidden_size
    if moe is None:
        layer_ffn = ffn_of(ffn_hidden_size)
        ffn: Num = num_layers * layer_ffn
        ffn_activated: Num | None = None
        router: Num = 0.0
    else:
        moe_layers = num_layers - moe.dense_layers
        expert = ffn_of(moe.expert_ffn_hidden_size)
        dense = moe.dense_layers * ffn_of(ffn_hidden_size)
        ffn = dense + moe_layers * (moe.num_experts + moe.shared_experts) * expert
        ffn_activated = dense + moe_layers * (moe.experts_per_token + moe.shared_experts) * expert
        router = moe_layers * (hidden_size * moe.num_experts + (moe.num_experts if moe.router_bias else 0.0))
        layer_ffn = ffn / num_layers  # the mean over dense and MoE layers
    return ParameterBreakdown(
        attention=num_layers * layer_attention,
        ffn=ffn,
        norms=num_layers * layer_norms + norm_params,  # + the final norm
        embeddings=embeddings,
        lm_head=lm_head,
        layer_attention=layer_attention,
        layer_ffn=layer_ffn,
        layer_norms=layer_norms,
        router=router,
        ffn_activated=ffn_activated,
    )


@dataclass(frozen=True)
class MoEShape:
    """The mixture-of-experts numbers (see the module docstring); broadcastable."""

    num_experts: Num
    experts_per_token: Num
    shared_experts: Num
    expert_ffn_hidden_size: Num
    dense_layers: Num
    router_bias: bool = False


@dataclass(frozen=True)
class MLAShape:
    """Multi-head latent attention widths (DeepSeek-V2/V3); q_lora_rank None = a full query projection."""

    q_lora_rank: Num | None
    kv_lora_rank: Num
    qk_nope_head_dim: Num
    qk_rope_head_dim: Num
    v_head_dim: Num


def mla_attention_params(*, hidden_size: Num, num_heads: Num, mla: MLAShape) -> Num:
    """Parameters of one MLA layer: query path, compressed KV path (with its norms), output projection."""
    qk_head = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    if mla.q_lora_rank is None:
        q: Num = hidden_size * num_heads * qk_head
    else:
        q = hidden_size * mla.q_lora_rank + mla.q_lora_rank + mla.q_lora_rank * num_heads * qk_head
    kv = (
        hidden_size * (mla.kv_lora_rank + mla.qk_rope_head_dim)
        + mla.kv_lora_rank
        + mla.kv_lora_rank * num_heads * (mla.qk_nope_head_dim + mla.v_head_dim)
    )
    return q + kv + num_heads * mla.v_head_dim * hidden_size


def moe_shape(spec: LLMSpec) -> MoEShape | None:
    """The spec's mixture-of-experts numbers, or None for a dense model."""
    if not spec.is_moe:
        return None
    return MoEShape(
        num_experts=spec.num_experts,
        experts_per_token=spec.experts_per_token,
        shared_experts=spec.num_shared_experts,
        expert_ffn_hidden_size=spec.expert_width,
        dense_layers=spec.dense_layers_before_moe,
        router_bias=spec.router_bias,
    )


def mla_shape(spec: LLMSpec) -> MLAShape | None:
    """The spec's latent-attention widths, or None for ordinary (GQA/MHA) attention."""
    if spec.kv_lora_rank is None:
        return None
    assert spec.qk_nope_head_dim is not None and spec.qk_rope_head_dim is not None and spec.v_head_dim is not None
    return MLAShape(
        q_lora_rank=spec.q_lora_rank,
        kv_lora_rank=spec.kv_lora_rank,
        qk_nope_head_dim=spec.qk_nope_head_dim,
        qk_rope_head_dim=spec.qk_rope_head_dim,
        v_head_dim=spec.v_head_dim,
    )


def expected_distinct_experts(num_experts: Num, experts_per_token: Num, tokens: Num) -> Num:
    """Expected number of distinct experts T tokens touch with top-k routing over E experts.

    Each expert is missed by one token with probability 1 - k/E (uniform routing), so by T
    independent tokens with (1 - k/E)^T: E * (1 - (1 - k/E)^T). One token touches k; many touch all E.
    """
    miss = 1.0 - np.asarray(experts_per_token, dtype=np.float64) / num_experts
    result: Num = num_experts * (1.0 - np.power(miss, tokens))
    return result


def llm_parameter_breakdown(spec: LLMSpec) -> ParameterBreakdown:
    """Parameter breakdown of a catalog architecture (its numeric fields may be arrays in a sweep)."""
    return parameter_breakdown(
        hidden_size=spec.hidden_size,
        num_layers=spec.num_layers,
        num_heads=spec.num_heads,
        num_kv_heads=spec.num_kv_heads,
        ffn_hidden_size=spec.ffn_hidden_size,
        vocab_size=spec.vocab_size,
        gated_ffn=spec.ffn_activation == "swiglu",
        tied_embeddings=spec.tied_embeddings,
        learned_positions=spec.max_context_tokens if spec.position_embedding == "learned" else 0.0,
        layernorm=spec.norm_type == "layernorm",
        linear_bias=spec.linear_bias,
        head_dim=spec.attention_head_dim,
        qk_norm=spec.qk_norm,
        moe=moe_shape(spec),
        mla=mla_shape(spec),
    )


def training_flop_per_token(spec: LLMSpec, sequence_length: Num) -> Num:
    """Model FLOP per trained token, 6N + 12*L*h*s (PaLM, Chowdhery et al. 2022, appendix B).

    N counts the activated parameters (an MoE token goes through k experts, not all E).
    """
    params = llm_parameter_breakdown(spec)
    non_embedding = params.activated - params.embeddings
    return 6.0 * non_embedding + 12.0 * spec.num_layers * spec.hidden_size * sequence_length
