"""Exact shapes of a decoder-only transformer: parameter counts per component.

Counts follow the architecture directly (GQA, gated FFN, biases, norms, learned positions,
tied or untied embeddings) rather than the 12*L*h^2 approximation.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def per_layer(self) -> Num:
        """Attention + FFN + the layer's two norms, for one layer."""
        return self.layer_attention + self.layer_ffn + self.layer_norms

    @property
    def total(self) -> Num:
        return self.attention + self.ffn + self.norms + self.embeddings + self.lm_head


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
) -> ParameterBreakdown:
    """Exact parameter counts; every numeric argument may be an array.

    learned_positions is the number of learned position embeddings (0 for RoPE).
    """
    head_dim = hidden_size / num_heads
    kv_width = 2.0 * num_kv_heads * head_dim
    bias = 1.0 if linear_bias else 0.0
    qkv = hidden_size * (hidden_size + kv_width) + bias * (hidden_size + kv_width)
    out_proj = hidden_size * hidden_size + bias * hidden_size
    layer_attention = qkv + out_proj
    ffn_matrices = 3.0 if gated_ffn else 2.0
    ffn_bias = bias * (ffn_hidden_size * (ffn_matrices - 1.0) + hidden_size)
    layer_ffn = ffn_matrices * hidden_size * ffn_hidden_size + ffn_bias
    norm_params = (2.0 if layernorm else 1.0) * hidden_size
    layer_norms = 2.0 * norm_params
    embeddings = vocab_size * hidden_size + learned_positions * hidden_size
    lm_head = 0.0 * vocab_size if tied_embeddings else vocab_size * hidden_size
    return ParameterBreakdown(
        attention=num_layers * layer_attention,
        ffn=num_layers * layer_ffn,
        norms=num_layers * layer_norms + norm_params,  # + the final norm
        embeddings=embeddings,
        lm_head=lm_head,
        layer_attention=layer_attention,
        layer_ffn=layer_ffn,
        layer_norms=layer_norms,
    )


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
    )


def training_flop_per_token(spec: LLMSpec, sequence_length: Num) -> Num:
    """Model FLOP per trained token, 6N + 12*L*h*s (PaLM, Chowdhery et al. 2022, appendix B)."""
    params = llm_parameter_breakdown(spec)
    non_embedding = params.total - params.embeddings
    return 6.0 * non_embedding + 12.0 * spec.num_layers * spec.hidden_size * sequence_length
