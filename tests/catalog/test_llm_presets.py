"""Parameter counts derived from each LLM preset against the officially published counts.

Tolerance: 0.5%, or half the rounding step of the published figure where the source rounds it
(e.g. "6.7B" is exact to +-0.05B, 0.75%; "46.7B" to +-0.05B; "671B" to +-0.5B); Llama counts are
published exactly and match exactly. Mixture-of-experts presets also state the count one token
goes through ("activated": k routed experts + shared experts + router per MoE layer, not all E),
checked the same way; each preset's published_*_source names the publication.
"""

from __future__ import annotations

import pytest

from dse.catalog import default_catalog
from dse.engines.transformer import expected_distinct_experts, llm_parameter_breakdown
from dse.specs.llm import LLMSpec

LLMS = default_catalog().items("llms")
MOE = [s for s in LLMS if s.published_activated_params_count is not None]


def _tolerance(published: float, half_step: float) -> float:
    return max(0.005, half_step / published)


@pytest.mark.parametrize("spec", LLMS, ids=[s.id for s in LLMS])
def test_parameter_count_matches_published(spec):
    derived = llm_parameter_breakdown(spec).total
    published = spec.published_params_count
    tolerance = _tolerance(published, spec.published_params_rounding_half_step)
    assert abs(derived / published - 1) <= tolerance, (spec.id, derived, published, spec.published_params_source)


@pytest.mark.parametrize("spec", MOE, ids=[s.id for s in MOE])
def test_activated_count_matches_published(spec):
    breakdown = llm_parameter_breakdown(spec)
    derived = breakdown.activated - (0.0 if spec.published_activated_counts_input_embedding else breakdown.embeddings)
    published = spec.published_activated_params_count
    tolerance = _tolerance(published, spec.published_activated_params_rounding_half_step)
    assert abs(derived / published - 1) <= tolerance, (
        spec.id,
        derived,
        published,
        spec.published_activated_params_source,
    )


def test_every_moe_preset_states_its_activated_count():
    assert (
        {s.id for s in LLMS if s.is_moe}
        == {s.id for s in MOE}
        >= {
            "mixtral-8x7b",
            "mixtral-8x22b",
            "deepseek-v3",
            "qwen3-235b-a22b",
        }
    )


def test_dense_models_activate_everything():
    for spec in LLMS:
        if not spec.is_moe:
            breakdown = llm_parameter_breakdown(spec)
            assert breakdown.activated == breakdown.total, spec.id


def test_llama2_7b_count_is_exact():
    # Hugging Face meta-llama/Llama-2-7b-hf: 6,738,415,616 parameters.
    assert llm_parameter_breakdown(default_catalog().get("llms", "llama2-7b")).total == 6_738_415_616


@pytest.mark.parametrize(("model", "count"), [("llama3.1-8b", 8_030_261_248), ("llama3.1-70b", 70_553_706_496)])
def test_llama31_counts_are_exact(model, count):
    # Hugging Face meta-llama/Llama-3.1-8B and -70B model pages (safetensors parameter counts).
    assert llm_parameter_breakdown(default_catalog().get("llms", model)).total == count


def test_gqa_shrinks_attention_exactly():
    # Llama-2-70B: 64 query heads, 8 KV heads of 128: QKV = 8192*(8192 + 2*8*128), no biases.
    breakdown = llm_parameter_breakdown(default_catalog().get("llms", "llama2-70b"))
    assert breakdown.layer_attention == 8192 * (8192 + 2 * 8 * 128) + 8192 * 8192


def test_mla_attention_counts_exactly():
    # DeepSeek-V3 layer (config.json): q_a 7168x1536 + norm 1536 + q_b 1536x(128*192);
    # kv_a 7168x(512+64) + norm 512 + kv_b 512x(128*256); o 128*128x7168.
    breakdown = llm_parameter_breakdown(default_catalog().get("llms", "deepseek-v3"))
    expected = 7168 * 1536 + 1536 + 1536 * 128 * 192 + 7168 * 576 + 512 + 512 * 128 * 256 + 128 * 128 * 7168
    assert breakdown.layer_attention == expected


def test_qwen3_head_dim_is_not_hidden_over_heads():
    # Qwen3-235B-A22B: 64 heads of 128 = 8192 query columns on a 4096 hidden size.
    breakdown = llm_parameter_breakdown(default_catalog().get("llms", "qwen3-235b-a22b"))
    assert breakdown.layer_attention == 4096 * (64 * 128 + 2 * 4 * 128) + 64 * 128 * 4096


def test_mixtral_router_and_experts():
    # 32 layers x (8 experts x 3 x 4096 x 14336 + router 4096 x 8); 2 experts per token.
    breakdown = llm_parameter_breakdown(default_catalog().get("llms", "mixtral-8x7b"))
    assert breakdown.router == 32 * 4096 * 8
    assert breakdown.ffn == 32 * 8 * 3 * 4096 * 14336
    assert breakdown.ffn_activated == 32 * 2 * 3 * 4096 * 14336


def test_expected_distinct_experts():
    assert expected_distinct_experts(256, 8, 1) == pytest.approx(8.0)
    assert expected_distinct_experts(8, 2, 1000) == pytest.approx(8.0)
    # DeepSeek-V3, batch 64 decode: 256 * (1 - (1 - 8/256)^64) = 224.3
    assert expected_distinct_experts(256, 8, 64) == pytest.approx(256 * (1 - (1 - 8 / 256) ** 64))


def test_old_inline_spec_without_new_fields_is_dense():
    spec = LLMSpec(
        id="x",
        name="x",
        source="x",
        hidden_size=1024,
        num_layers=2,
        num_heads=8,
        num_kv_heads=8,
        ffn_hidden_size=4096,
        ffn_activation="gelu",
        vocab_size=1000,
        tied_embeddings=True,
        max_context_tokens=2048,
        position_embedding="learned",
        norm_type="layernorm",
        linear_bias=True,
        published_params_count=1e6,
        published_params_source="x",
    )
    assert not spec.is_moe and not spec.is_mla and spec.head_dim == 128


def test_moe_fields_are_checked():
    with pytest.raises(ValueError, match="experts_per_token"):
        LLMSpec(**{**_fields("mixtral-8x7b"), "experts_per_token": 9})
    with pytest.raises(ValueError, match="num_experts > 0"):
        LLMSpec(**{**_fields("llama2-7b"), "experts_per_token": 2})


def _fields(model: str) -> dict:
    import dataclasses

    return dataclasses.asdict(default_catalog().get("llms", model))
