"""Training and plan search model dense transformers with ordinary attention; they refuse what they would
misprice (the inference kind prices mixture-of-experts and latent attention)."""

from __future__ import annotations

from dse.scenarios.base import InputError
from dse.specs.llm import LLMSpec


def dense_model_for_training(model: LLMSpec, field: str = "model", modelled_in: str = "training") -> LLMSpec:
    """The model, or an InputError naming `field` for a mixture-of-experts, latent-attention or
    odd-head-width model (the engine of `modelled_in` would price it as a dense model, wrongly)."""
    if model.is_moe:
        raise InputError(
            field,
            f"'{model.id}' is a mixture-of-experts model: MoE models are not modelled in {modelled_in} yet "
            "(the inference kind serves it)",
        )
    if model.is_mla:
        raise InputError(
            field,
            f"'{model.id}' uses multi-head latent attention: not modelled in {modelled_in} yet "
            "(the inference kind serves it)",
        )
    if model.attention_head_dim is not None and model.attention_head_dim * model.num_heads != model.hidden_size:
        raise InputError(
            field,
            f"'{model.id}' has attention heads of width {model.attention_head_dim} "
            f"(not hidden / heads): not modelled in {modelled_in} yet",
        )
    return model
