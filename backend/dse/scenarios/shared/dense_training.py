"""The architectures training and plan search model: dense transformers, mixture-of-experts (expert GEMMs,
expert parallelism and its all-to-alls), multi-head latent attention and heads not hidden/heads wide
(`dse.engines.training.experts`). The function keeps its name so callers need not change."""

from __future__ import annotations

from dse.specs.llm import LLMSpec


def dense_model_for_training(model: LLMSpec, field: str = "model", modelled_in: str = "training") -> LLMSpec:
    """The model: every catalog architecture is modelled in `modelled_in` now (MoE, MLA, odd head widths);
    `field` names the input, for the refusals an architecture the engines cannot price would raise."""
    del field, modelled_in
    return model
