"""Decoder-only LLM architectures: dense, mixture-of-experts (MoE) and multi-head latent attention (MLA)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge

from dse.specs.common import PositiveFloat, PositiveInt

NonNegativeInt = Annotated[int, Ge(0)]


@dataclass(frozen=True)
class LLMSpec:
    """A decoder-only transformer, enough to count parameters, FLOP and bytes exactly.

    Every field after `published_params_rounding_half_step` is optional and defaults to a dense
    model with multi-head (or grouped-query) attention, so older presets and saved inline specs stay valid.
    Names follow the Hugging Face config.json keys they come from (in brackets).
    """

    id: str
    name: str
    source: str
    hidden_size: PositiveInt
    num_layers: PositiveInt
    num_heads: PositiveInt
    num_kv_heads: PositiveInt
    #: FFN width of the dense layers [intermediate_size].
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
    #: Width of one attention head when it is not hidden_size / num_heads [head_dim] (Qwen3: 128).
    attention_head_dim: PositiveInt | None = None
    #: RMSNorm of each head's queries and keys (Qwen3) [q_norm, k_norm]: 2 * head_dim per layer.
    qk_norm: bool = False
    # -- mixture of experts (0 experts = a dense model) --
    #: Routed experts per MoE layer [num_local_experts / n_routed_experts / num_experts].
    num_experts: NonNegativeInt = 0
    #: Routed experts each token goes to (top-k) [num_experts_per_tok].
    experts_per_token: NonNegativeInt = 0
    #: Experts every token goes to [n_shared_experts], each of width expert_ffn_hidden_size.
    num_shared_experts: NonNegativeInt = 0
    #: FFN width of one expert [moe_intermediate_size]; None = ffn_hidden_size (Mixtral).
    expert_ffn_hidden_size: PositiveInt | None = None
    #: Dense layers before the first MoE layer [first_k_dense_replace], of width ffn_hidden_size.
    dense_layers_before_moe: NonNegativeInt = 0
    #: A per-expert bias in the router [e_score_correction_bias] besides its h x E weight.
    router_bias: bool = False
    # -- multi-head latent attention (DeepSeek-V2/V3); kv_lora_rank None = ordinary attention --
    #: Rank of the query down-projection [q_lora_rank]; None = a full h x heads*(nope+rope) query projection.
    q_lora_rank: PositiveInt | None = None
    #: Rank of the compressed KV latent that is cached [kv_lora_rank].
    kv_lora_rank: PositiveInt | None = None
    #: Per-head query/key width without position encoding [qk_nope_head_dim].
    qk_nope_head_dim: PositiveInt | None = None
    #: Per-head decoupled RoPE width, its key shared by all heads and cached [qk_rope_head_dim].
    qk_rope_head_dim: PositiveInt | None = None
    #: Per-head value width [v_head_dim].
    v_head_dim: PositiveInt | None = None
    # -- the published activated (per-token) count of an MoE model --
    published_activated_params_count: PositiveFloat | None = None
    published_activated_params_source: str = ""
    published_activated_params_rounding_half_step: float = 0.0
    #: Whether the publication counts the input embedding table among the activated parameters
    #: (Mistral and Qwen do; DeepSeek's 37B does not: a token reads one row of it).
    published_activated_counts_input_embedding: bool = True

    def __post_init__(self) -> None:
        if self.num_experts > 0:
            if not 0 < self.experts_per_token <= self.num_experts:
                raise ValueError("experts_per_token must be in 1..num_experts for an MoE model")
            if self.dense_layers_before_moe >= self.num_layers:
                raise ValueError("dense_layers_before_moe must leave at least one MoE layer")
        elif self.experts_per_token or self.num_shared_experts or self.dense_layers_before_moe:
            raise ValueError("experts_per_token, num_shared_experts and dense_layers_before_moe need num_experts > 0")
        mla = (self.kv_lora_rank, self.qk_nope_head_dim, self.qk_rope_head_dim, self.v_head_dim)
        if any(v is not None for v in mla) and any(v is None for v in mla):
            raise ValueError("multi-head latent attention needs kv_lora_rank, qk_nope/rope_head_dim and v_head_dim")
        if self.q_lora_rank is not None and self.kv_lora_rank is None:
            raise ValueError("q_lora_rank is a multi-head latent attention field: set kv_lora_rank too")

    @property
    def head_dim(self) -> int:
        if self.attention_head_dim is not None:
            return self.attention_head_dim
        return self.hidden_size // self.num_heads

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def expert_width(self) -> int:
        """FFN width of one (routed or shared) expert."""
        return self.expert_ffn_hidden_size if self.expert_ffn_hidden_size is not None else self.ffn_hidden_size

    @property
    def moe_layers(self) -> int:
        return self.num_layers - self.dense_layers_before_moe if self.is_moe else 0
