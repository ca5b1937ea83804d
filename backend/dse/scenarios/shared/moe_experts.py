"""The dtype a mixture of experts' routed experts run in under a software stack, for the inference and serving kinds."""

from __future__ import annotations

from dse.specs.llm import LLMSpec
from dse.specs.stacks import SoftwareStackSpec


def moe_expert_dtype(
    stack: SoftwareStackSpec | None, llm: LLMSpec, weight_dtype: str, activation_dtype: str
) -> str | None:
    """The dtype of `llm`'s experts where `stack` keeps them apart from the weight dtype (an fp8 checkpoint under
    TensorRT-LLM v0.9.0, whose MoE plugin has no fp8 path: fp16 experts); None: a dense model, no stack, or the
    experts in the weight dtype like the rest."""
    if stack is None or llm.num_experts == 0:
        return None
    experts = stack.moe_expert_dtype(weight_dtype, activation_dtype)
    return None if experts == weight_dtype else experts
