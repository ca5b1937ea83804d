"""Parameter counts derived from each LLM preset against the officially published counts.

Tolerance: 0.5%, or half the rounding step of the published figure where the source rounds it
(e.g. "6.7B" is exact to +-0.05B, 0.75%); Llama counts are published exactly and match exactly.
"""

from __future__ import annotations

import pytest

from dse.catalog import default_catalog
from dse.engines.transformer import llm_parameter_breakdown

LLMS = default_catalog().items("llms")


@pytest.mark.parametrize("spec", LLMS, ids=[s.id for s in LLMS])
def test_parameter_count_matches_published(spec):
    derived = llm_parameter_breakdown(spec).total
    published = spec.published_params_count
    tolerance = max(0.005, spec.published_params_rounding_half_step / published)
    assert abs(derived / published - 1) <= tolerance, (spec.id, derived, published, spec.published_params_source)


def test_llama2_7b_count_is_exact():
    # Hugging Face meta-llama/Llama-2-7b-hf: 6,738,415,616 parameters.
    assert llm_parameter_breakdown(default_catalog().get("llms", "llama2-7b")).total == 6_738_415_616


def test_gqa_shrinks_attention_exactly():
    # Llama-2-70B: 64 query heads, 8 KV heads of 128: QKV = 8192*(8192 + 2*8*128), no biases.
    breakdown = llm_parameter_breakdown(default_catalog().get("llms", "llama2-70b"))
    assert breakdown.layer_attention == 8192 * (8192 + 2 * 8 * 128) + 8192 * 8192
