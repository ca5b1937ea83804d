"""Mixture-of-experts, multi-head latent attention and fp4 in the inference engine.

Each count is written out from the preset's config.json numbers (models_db/llms/*.json sources).
"""

from __future__ import annotations

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.decoder_ops import decoder_layer_ops, kv_cache_bytes_per_token
from dse.engines.inference import model_shape
from dse.engines.transformer import expected_distinct_experts, mla_shape, moe_shape
from dse.scenarios.base import InputError
from dse.scenarios.kinds.inference import KIND
from dse.scenarios.kinds.inference.inputs import InferenceInputs

CATALOG = default_catalog()


def _ops(model: str, *, batch: float, context: float = 1024.0, tp: float = 1.0, prefill: bool = False):
    spec = CATALOG.get("llms", model)
    shape = model_shape(spec)
    return decoder_layer_ops(
        batch=batch,
        query_tokens=context if prefill else 1.0,
        context_tokens=context,
        hidden_size=spec.hidden_size,
        num_heads=spec.num_heads,
        num_kv_heads=spec.num_kv_heads,
        ffn_hidden_size=spec.ffn_hidden_size,
        gated_ffn=True,
        layernorm=False,
        tensor_parallel=tp,
        weight_bytes=1.0,
        activation_bytes=2.0,
        kv_cache_bytes=1.0,
        prefill=prefill,
        head_dim=shape.head_dim,
        moe=shape.moe,
        moe_layer_fraction=shape.moe_layer_fraction,
        mla=shape.mla,
    )


def test_one_token_reads_k_experts_and_a_large_batch_reads_all() -> None:
    # Mixtral 8x7B: h 4096, expert width 14336, 8 experts, top-2; fp8 weights (1 byte).
    h, d_e, e = 4096, 14336, 8
    router_weights = h * e
    one = _ops("mixtral-8x7b", batch=1.0)["ffn_down"]
    assert one.bytes_moved - 2 * (d_e * 2 + h * 2) == pytest.approx(2 * d_e * h)  # 2 experts' down weights
    many = _ops("mixtral-8x7b", batch=4096.0)["ffn_up"]
    weights = many.bytes_moved - 4096 * 2 * (h * 2 + 2 * d_e * 2) - 4096 * e * 2 - router_weights
    assert weights == pytest.approx(e * h * 2 * d_e, rel=1e-9)  # every expert
    # FLOP are the activated ones: k = 2 experts per token (+ the router), not 8
    assert many.flop == pytest.approx(4096 * 2 * 2 * h * 2 * d_e + 4096 * 2 * h * e)


def test_distinct_experts_formula_in_the_ops() -> None:
    # DeepSeek-V3 decode at batch 64: 256 * (1 - (1 - 8/256)^64) routed + 1 shared expert read.
    spec = CATALOG.get("llms", "deepseek-v3")
    touched = 256 * (1 - (1 - 8 / 256) ** 64)
    assert float(expected_distinct_experts(256, 8, 64)) == pytest.approx(touched)
    assert 200 < touched < 256
    moe = moe_shape(spec)
    assert moe is not None
    ops = decoder_layer_ops(
        batch=64.0,
        query_tokens=1.0,
        context_tokens=1024.0,
        hidden_size=7168,
        num_heads=128,
        num_kv_heads=128,
        ffn_hidden_size=18432,
        gated_ffn=True,
        layernorm=False,
        tensor_parallel=1.0,
        weight_bytes=1.0,
        activation_bytes=0.0,  # weights alone
        kv_cache_bytes=1.0,
        moe=moe,
        moe_layer_fraction=1.0,
        mla=mla_shape(spec),
    )
    assert ops["ffn_down"].bytes_moved == pytest.approx((touched + 1) * 2048 * 7168)


def test_dense_layers_blend_into_the_mean_layer() -> None:
    # DeepSeek-V3: 3 dense layers (width 18432) and 58 MoE layers of 61.
    spec = CATALOG.get("llms", "deepseek-v3")
    assert model_shape(spec).moe_layer_fraction == pytest.approx(58 / 61)
    flop = _ops("deepseek-v3", batch=1.0)["ffn_down"].flop
    dense = 2 * 18432 * 7168
    moe = (8 + 1) * 2 * 2048 * 7168
    assert flop == pytest.approx(3 / 61 * dense + 58 / 61 * moe)


def test_mla_kv_cache_is_the_latent() -> None:
    # DeepSeek-V3: 61 layers x (kv_lora_rank 512 + qk_rope_head_dim 64) x 1 byte, not 2 x 128 x 128 per layer.
    spec = CATALOG.get("llms", "deepseek-v3")
    got = kv_cache_bytes_per_token(
        num_layers=61, hidden_size=7168, num_heads=128, num_kv_heads=128, kv_cache_bytes=1.0, mla=mla_shape(spec)
    )
    assert got == 61 * 576


def test_mla_absorbed_decode_flop() -> None:
    # Per token and rank at TP8: score 2 * 16 heads * (512 + 64) * s, context 2 * 16 * 512 * s.
    s = 1000.0
    ops = _ops("deepseek-v3", batch=1.0, context=s, tp=8.0)
    assert ops["score"].flop == pytest.approx(2 * 16 * 576 * s)
    assert ops["context"].flop == pytest.approx(2 * 16 * 512 * s)
    # the latent is read once for all heads: s * 576 bytes (fp8), plus queries and scores
    assert ops["score"].bytes_moved == pytest.approx(16 * 576 * 2 + s * 576 + 16 * s * 2)


def test_qwen3_query_width_is_heads_times_head_dim() -> None:
    # Qwen3-235B-A22B: 64 heads x 128 = 8192 query columns + 2 x 4 x 128 KV columns on a 4096 hidden size.
    qkv = _ops("qwen3-235b-a22b", batch=1.0)["qkv"]
    assert qkv.flop == pytest.approx(2 * 4096 * (8192 + 1024))


def _evaluate(**inputs):
    return KIND.evaluate(KIND.resolve(InferenceInputs(**inputs), CATALOG))


def test_fp4_is_refused_without_an_fp4_peak() -> None:
    with pytest.raises(InputError, match="fp4"):
        KIND.resolve(
            InferenceInputs(
                model="llama3.1-8b", system="gpu_only", accelerator="h100-sxm", memory=None, weight_dtype="fp4"
            ),
            CATALOG,
        )
    with pytest.raises(InputError, match="mi300x"):
        KIND.resolve(
            InferenceInputs(
                model="llama3.1-8b",
                system="gpu_only",
                accelerator="mi300x",
                comparison_gpu="mi300x",
                memory=None,
                kv_cache_dtype="fp4",
            ),
            CATALOG,
        )


def test_fp4_on_b200_halves_the_weights_of_fp8() -> None:
    common = dict(
        model="llama3.1-8b", system="gpu_only", accelerator="b200-sxm", comparison_gpu="b200-sxm", memory=None
    )
    fp4 = {m.key: m.value for m in _evaluate(**common, weight_dtype="fp4").metrics}
    fp8 = {m.key: m.value for m in _evaluate(**common, weight_dtype="fp8").metrics}
    assert fp4["weights_bytes_per_device"] == pytest.approx(fp8["weights_bytes_per_device"] / 2)


def test_mla_on_pim_is_refused() -> None:
    with pytest.raises(InputError, match="latent"):
        KIND.resolve(InferenceInputs(model="deepseek-v3", system="neupims", tensor_parallel=8), CATALOG)


def test_moe_example_notes_say_how_many_experts() -> None:
    result = _evaluate(
        model="deepseek-v3",
        system="gpu_only",
        accelerator="h200-sxm",
        comparison_gpu="h200-sxm",
        memory=None,
        batch_size=64,
        prompt_tokens=1024,
        output_tokens=512,
        tensor_parallel=8,
        weight_dtype="fp8",
        kv_cache_dtype="fp8",
    )
    assert any("222.4 of the 256 experts" in n for n in result.notes)
    assert any("576 elements per token" in n for n in result.notes)
    metrics = {m.key: m.value for m in result.metrics}
    # every expert is stored: 671.0e9 parameters in fp8 over 8 GPUs
    assert metrics["weights_bytes_per_device"] == pytest.approx(671.03e9 / 8, rel=1e-3)


def test_moe_pim_note_says_experts_stay_on_the_npu() -> None:
    result = _evaluate(model="mixtral-8x7b", batch_size=64, prompt_tokens=256, output_tokens=256)
    assert any("expert FFNs stay on the NPU" in n for n in result.notes)


def test_moe_sweep_stays_vectorised() -> None:
    spec = CATALOG.get("llms", "mixtral-8x7b")
    shape = model_shape(spec)
    batch = np.array([1.0, 4.0, 64.0])
    ops = decoder_layer_ops(
        batch=batch,
        query_tokens=1.0,
        context_tokens=512.0,
        hidden_size=4096,
        num_heads=32,
        num_kv_heads=8,
        ffn_hidden_size=14336,
        gated_ffn=True,
        layernorm=False,
        tensor_parallel=1.0,
        weight_bytes=2.0,
        activation_bytes=2.0,
        kv_cache_bytes=2.0,
        moe=shape.moe,
    )
    assert np.shape(ops["ffn_up"].bytes_moved) == (3,)
    assert np.all(np.diff(ops["ffn_up"].bytes_moved) > 0)


def _h100_fp8_device():
    """H100 SXM in fp8 with the DeepGEMM GEMM fit (the stack the TensorRT-LLM fp8 figures run)."""
    from dse.catalog.calibration import load_fits, stack_device

    stack = CATALOG.get("stacks", "tensorrt-llm")
    device = stack_device(load_fits(CATALOG.root), CATALOG.get("accelerators", "h100-sxm"), "fp8", stack).device
    assert device.gemm is not None
    return device


def test_expert_ffns_are_one_grouped_gemm_of_the_touched_experts() -> None:
    # Mixtral 8x7B decode at batch 6, TP2: D = 8 (1 - (3/4)^6) experts touched, each with 6 x 2 / D tokens;
    # up: the router (6 x 8 x 4096) and D problems of (6*2/D, 2 x 14336 / 2, 4096) in one launch; down likewise.
    from dse.engines.decoder_ops import price_layer_ops

    touched = 8 * (1 - 0.75**6)
    ops = _ops("mixtral-8x7b", batch=6.0, tp=2.0)
    up, down = ops["ffn_up"], ops["ffn_down"]
    assert up.gemms[0] == (6.0, 8, 4096)
    assert float(up.gemm_groups[1]) == pytest.approx(touched)
    m, n, k = up.gemms[1]
    assert (float(m), n, k) == (pytest.approx(12 / touched), 14336.0, 4096)
    assert float(down.gemm_groups[0]) == pytest.approx(touched) and down.gemms[0][1:] == (4096, 7168.0)
    device = _h100_fp8_device()
    priced = price_layer_ops(ops, device, tensor_parallel=2.0, link_bandwidth_bytes_per_s=450e9, link_latency_s=0.0)
    router = device.gemm_time_s(6.0, 8, 4096, b_bytes=1.0).time_s
    experts = device.gemm_time_s(12 / touched, 14336.0, 4096, b_bytes=1.0, groups=touched).time_s
    assert float(priced["ffn_up"].time_s) == pytest.approx(float(router + experts), rel=1e-12)
    # the expert weights a step reads are those of the touched experts (1 byte each in fp8)
    assert float(device.gemm_time_s(m, n, k, groups=touched).memory_s) >= touched * 14336 * 4096 / 3.35e12


def test_grouped_experts_cost_less_than_one_gemm_per_expert() -> None:
    # one launch whose tiles share the waves, not D launches of a few tiles each
    device = _h100_fp8_device()
    grouped = float(device.gemm_time_s(16.0, 7168.0, 2048, groups=8.0).time_s)
    apart = 8 * float(device.gemm_time_s(16.0, 7168.0, 2048).time_s)
    assert grouped < apart


def test_dense_and_moe_layers_keep_their_gemms_at_their_shares() -> None:
    # DeepSeek-V3: the 3 dense layers' FFN GEMM counts 3/61 of its time, the 58 MoE layers' GEMMs 58/61.
    down = _ops("deepseek-v3", batch=64.0)["ffn_down"]
    assert down.gemms[0] == (64.0, 7168, 18432)  # the dense layer's
    assert [float(s) for s in down.gemm_shares] == pytest.approx([3 / 61, 58 / 61, 58 / 61])
    assert float(down.gemm_groups[1]) == pytest.approx(256 * (1 - (1 - 8 / 256) ** 64))  # routed, grouped
    assert down.gemms[2] == (64.0, 7168, 2048) and down.gemm_groups[2] == 1.0  # the shared expert, dense


def _toy_moe_ops(*, tp: float, ep: float, imbalance: float = 1.0, batch: float = 16.0):
    """A balanced toy MoE layer: h 64, 8 routed experts of width 32 (gated), top-2, no shared experts;
    weights 1 byte, activations 2 bytes, decode (one token per request)."""
    from dse.engines.transformer import MoEShape

    return decoder_layer_ops(
        batch=batch,
        query_tokens=1.0,
        context_tokens=128.0,
        hidden_size=64.0,
        num_heads=8.0,
        num_kv_heads=8.0,
        ffn_hidden_size=32.0,
        gated_ffn=True,
        layernorm=False,
        tensor_parallel=tp,
        weight_bytes=1.0,
        activation_bytes=2.0,
        kv_cache_bytes=2.0,
        moe=MoEShape(
            num_experts=8.0, experts_per_token=2.0, shared_experts=0.0, expert_ffn_hidden_size=32.0, dense_layers=0.0
        ),
        expert_parallel=ep,
        expert_load_imbalance=imbalance,
    )


@pytest.mark.parametrize("model", ["mixtral-8x7b", "deepseek-v3"])
def test_expert_parallel_1_is_the_tensor_parallel_moe_exactly(model: str) -> None:
    spec = CATALOG.get("llms", model)
    shape = model_shape(spec)
    common = {
        "batch": np.array([1.0, 64.0, 4096.0]),
        "query_tokens": 1.0,
        "context_tokens": 1024.0,
        "hidden_size": spec.hidden_size,
        "num_heads": spec.num_heads,
        "num_kv_heads": spec.num_kv_heads,
        "ffn_hidden_size": spec.ffn_hidden_size,
        "gated_ffn": True,
        "layernorm": False,
        "tensor_parallel": 8.0,
        "weight_bytes": 1.0,
        "activation_bytes": 2.0,
        "kv_cache_bytes": 1.0,
        "head_dim": shape.head_dim,
        "moe": shape.moe,
        "moe_layer_fraction": shape.moe_layer_fraction,
        "mla": shape.mla,
    }
    default = decoder_layer_ops(**common)
    explicit = decoder_layer_ops(**common, expert_parallel=1.0, expert_load_imbalance=1.0)
    for name in ("ffn_up", "ffn_act", "ffn_down", "all_reduce_ffn"):
        a, b = default[name], explicit[name]
        assert np.array_equal(a.flop, b.flop) and np.array_equal(a.bytes_moved, b.bytes_moved)
        assert len(a.gemms) == len(b.gemms)
        for ga, gb in zip(a.gemms, b.gemms, strict=True):
            assert all(np.array_equal(x, y) for x, y in zip(ga, gb, strict=True))
        assert all(np.array_equal(x, y) for x, y in zip(a.gemm_groups, b.gemm_groups, strict=True))


def test_expert_parallel_equal_to_tp_holds_whole_experts_and_keeps_the_bytes() -> None:
    # Toy: E 8, k 2, h 64, d_e 32 gated (d_in 64), TP 4. Batch 16: D = 8 (1 - (3/4)^16) experts touched.
    touched = 8 * (1 - 0.75**16)
    tp_ops = _toy_moe_ops(tp=4.0, ep=1.0)
    ep_ops = _toy_moe_ops(tp=4.0, ep=4.0)
    up, down = ep_ops["ffn_up"], ep_ops["ffn_down"]
    # EP 4: 2 local experts, whole (64 columns of gate+up, 32 of down): D/4 problems of 16*2/D tokens
    m, n, k = up.gemms[1]
    assert (float(m), n, k) == (pytest.approx(32 / touched), 64.0, 64.0)
    assert float(up.gemm_groups[1]) == pytest.approx(touched / 4)
    assert down.gemms[0][1:] == (64.0, 32.0) and float(down.gemm_groups[0]) == pytest.approx(touched / 4)
    # TP 4: D problems at a quarter of each expert's columns
    assert tp_ops["ffn_up"].gemms[1][1] == 16.0 and float(tp_ops["ffn_up"].gemm_groups[1]) == pytest.approx(touched)
    # expert weight bytes per GPU are the same: D/4 whole experts = D quarters (1 byte each)
    router_bytes = 64 * 8 + 16 * 8 * 2  # its h x E weights (1 byte) and the logits (2 bytes)
    up_weights = touched / 4 * (64 * 64)
    # this rank's 16*2/4 token-expert pairs read their 64-wide input and write 64 whole columns (2 bytes each)
    assert float(up.bytes_moved) == pytest.approx(up_weights + 8 * 64 * 2 + 8 * 64 * 2 + router_bytes)
    assert float(up.flop) == pytest.approx(8 * 2 * 64 * 64 + 16 * 2 * 64 * 8)  # 8 pairs x 64 columns, the router
    assert float(tp_ops["ffn_up"].flop) == float(up.flop)  # the same FLOP per rank, balanced
    down_weights = touched / 4 * (32 * 64)
    assert float(down.bytes_moved) == pytest.approx(down_weights + 8 * 32 * 2 + 8 * 64 * 2)
    # the combine is the TP group's all-reduce of the T x h outputs, unchanged (tokens are on every rank)
    assert ep_ops["all_reduce_ffn"] == tp_ops["all_reduce_ffn"]
    assert float(ep_ops["all_reduce_ffn"].link_bytes) == 16 * 64 * 2


def test_expert_load_imbalance_scales_the_busiest_ranks_tokens_not_its_weights() -> None:
    balanced, skewed = _toy_moe_ops(tp=4.0, ep=4.0), _toy_moe_ops(tp=4.0, ep=4.0, imbalance=1.5)
    router_flop = 16 * 2 * 64 * 8
    assert float(skewed["ffn_up"].flop) - router_flop == pytest.approx(
        1.5 * (float(balanced["ffn_up"].flop) - router_flop)
    )
    assert float(skewed["ffn_up"].gemms[1][0]) == pytest.approx(1.5 * float(balanced["ffn_up"].gemms[1][0]))
    assert skewed["ffn_up"].gemm_groups == balanced["ffn_up"].gemm_groups


def test_expert_parallel_half_of_tp_splits_each_local_expert_over_two_ranks() -> None:
    # TP 4, EP 2: 4 local experts at half their columns (32 of gate+up), D/2 problems
    up = _toy_moe_ops(tp=4.0, ep=2.0)["ffn_up"]
    assert up.gemms[1][1] == 32.0
    assert float(up.gemm_groups[1]) == pytest.approx(8 * (1 - 0.75**16) / 2)
