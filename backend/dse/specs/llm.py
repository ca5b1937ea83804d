"""Decoder-only LLM architectures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dse.specs.common import PositiveFloat, PositiveInt


@dataclass(frozen=True)
class LLMSpec:
    """A decoder-only transformer, enough to count parameters, FLOP and bytes exactly."""

    id: str
    name: str
    source: str
    hidden_size: PositiveInt
    num_layers: PositiveInt
    num_heads: PositiveInt
    num_kv_heads: PositiveInt
    ffn_hidden_size: PositiveInt
    #: The FFN's activation: GELU (two matrices) or SwiGLU (gated, three matrices).
    ffn_activation: Literal["gelu", "swiglu"]
    vocab_size: PositiveInt
    tied_embeddings: bool
    max_context_tokens: PositiveInt
    position_embedding: Literal["learned", "rope"]
    norm_type: Literal["layernorm", "rmsnorm"]
    linear_bias: bool
    published_params_count: PositiveFloat
    published_params_source: str
    #: Half the rounding step of the published count (e.g. 0.05e9 for "6.7B"); 0 when exact.
    published_params_rounding_half_step: float = 0.0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads
