"""Published real-hardware figures beyond the calibration points (docs/inference.md, "Further published figures").

1. microsoft/vidur data/profiling/compute/h100/meta-llama/Llama-2-7b-hf/mlp.csv (commit
   e26eb8f79fa9a6a7c38eac0f5291302402b20364): the H100 preset is fitted jointly on five of its rows
   (batch 1 at TP1 and TP4, 4096 tokens at TP1/2/4); the other rows (batch 8-128, TP2, TP8) are predictions.
2. microsoft/vidur's early profiling sets data/profiling/{h100,a100}/mlp.csv (commits
   6d98aa8f71696520acc603d87439e77cc78160a7, 7f14d6abd308fa7a619cfef2250342b353d19900), Llama-2-13B rows: a model
   neither preset was fitted to.

Every row: median (ms) of attn_pre_proj (fused QKV) + attn_post_proj + mlp_up_proj (gate+up) + mlp_down_proj, one
layer, one tensor-parallel rank. Presets as they are (one calibration per accelerator); tolerance 15% (the issue's).
Known misses are strict xfails with the reason: GEMMs of 256 tokens on H100 run at ~40% of peak (tile efficiency, not
modelled); the early H100 set is anomalously slow (1.14x A100 on the same model); A100's 17 us per-kernel overhead,
fitted to LLMCompass's eager-PyTorch GEMVs, over-predicts vidur's TP4 GEMVs.
"""

from __future__ import annotations

import pytest

from tests.engines.test_inference_calibration import _priced

TOLERANCE = 0.15

LLAMA2_7B = dict(
    hidden_size=4096.0, num_heads=32.0, num_kv_heads=32.0, ffn_hidden_size=11008.0, gated_ffn=True, layernorm=False
)

# (tokens in the batch, TP ranks) -> summed medians (ms -> s), vidur compute/h100 Llama-2-7B (source 1 above).
VIDUR_H100_LLAMA2_7B_S = {
    (1, 1): (0.038 + 0.016 + 0.064 + 0.038) * 1e-3,
    (8, 1): (0.036 + 0.016 + 0.064 + 0.036) * 1e-3,
    (32, 1): (0.038 + 0.016 + 0.066 + 0.039) * 1e-3,
    (64, 1): (0.040 + 0.016 + 0.066 + 0.040) * 1e-3,
    (128, 1): (0.041 + 0.020 + 0.071 + 0.048) * 1e-3,
    (4096, 1): (0.584 + 0.193 + 0.987 + 0.441) * 1e-3,
    (1, 2): (0.020 + 0.009 + 0.036 + 0.020) * 1e-3,
    (8, 2): (0.021 + 0.009 + 0.033 + 0.021) * 1e-3,
    (32, 2): (0.021 + 0.009 + 0.036 + 0.020) * 1e-3,
    (4096, 2): (0.2815 + 0.102 + 0.499 + 0.217) * 1e-3,
    (1, 4): (0.014 + 0.006 + 0.019 + 0.0115) * 1e-3,
    (8, 4): (0.014 + 0.006 + 0.019 + 0.0115) * 1e-3,
    (4096, 4): (0.152 + 0.049 + 0.260 + 0.110) * 1e-3,
    (4096, 8): (0.086 + 0.030 + 0.132 + 0.069) * 1e-3,
}
# Out of sample for the H100 fit (a GQA model of another shape): vidur
# data/profiling/compute/h100/meta-llama/Llama-2-70b-hf/mlp.csv (commit 683364e91288ede0309a60a00773d230e6aead44).
LLAMA2_70B = dict(
    hidden_size=8192.0, num_heads=64.0, num_kv_heads=8.0, ffn_hidden_size=28672.0, gated_ffn=True, layernorm=False
)
VIDUR_H100_LLAMA2_70B_S = {
    (2, 1): (0.062 + 0.054 + 0.309 + 0.162) * 1e-3,
    (8, 1): (0.059 + 0.049 + 0.305 + 0.162) * 1e-3,
    (32, 1): (0.065 + 0.053 + 0.3135 + 0.164) * 1e-3,
    (128, 1): (0.066 + 0.052 + 0.327 + 0.166) * 1e-3,
    (2, 4): (0.020 + 0.014 + 0.081 + 0.044) * 1e-3,
    (8, 4): (0.020 + 0.014 + 0.085 + 0.048) * 1e-3,
    (32, 4): (0.021 + 0.018 + 0.0825 + 0.048) * 1e-3,
    (128, 4): (0.025 + 0.018 + 0.087 + 0.047) * 1e-3,
}
VIDUR_H100_LLAMA2_7B_256_TOKENS_S = (0.052 + 0.022 + 0.130 + 0.056) * 1e-3

LLAMA2_13B = dict(
    hidden_size=5120.0, num_heads=40.0, num_kv_heads=40.0, ffn_hidden_size=13824.0, gated_ffn=True, layernorm=False
)

# (tokens in the batch, tensor-parallel ranks) -> summed median time of the four linears per rank, seconds.
VIDUR_H100_LLAMA2_13B_S = {
    (1, 1): (0.0875 + 0.032 + 0.1535 + 0.078) * 1e-3,
    (8, 1): (0.088 + 0.033 + 0.151 + 0.079) * 1e-3,
    (64, 1): (0.092 + 0.035 + 0.162 + 0.083) * 1e-3,
    (256, 1): (0.125 + 0.044 + 0.181 + 0.101) * 1e-3,
    (1, 4): (0.026 + 0.010 + 0.042 + 0.022) * 1e-3,
    (256, 4): (0.0395 + 0.015 + 0.055 + 0.0305) * 1e-3,
}


# vidur data/profiling/compute/a100/meta-llama/Llama-2-7b-hf/mlp.csv (commit bee57dafa1eb2dc422dcaec46a66975599a6a242),
# same four medians summed; (1, 1) and the 4096-token shares are the A100 preset's own vidur calibration points.
VIDUR_A100_LLAMA2_7B_S = {
    (1, 1): (0.065 + 0.025 + 0.116 + 0.060) * 1e-3,
    (8, 1): (0.063 + 0.025 + 0.111 + 0.061) * 1e-3,
    (32, 1): (0.066 + 0.027 + 0.115 + 0.065) * 1e-3,
    (64, 1): (0.067 + 0.027 + 0.116 + 0.068) * 1e-3,
    (4096, 1): (1.911 + 0.611 + 3.3655 + 1.604) * 1e-3,
    (1, 2): (0.033 + 0.015 + 0.056 + 0.032) * 1e-3,
    (8, 2): (0.034 + 0.015 + 0.057 + 0.033) * 1e-3,
    (32, 2): (0.039 + 0.016 + 0.061 + 0.0345) * 1e-3,
    (64, 2): (0.037 + 0.015 + 0.060 + 0.036) * 1e-3,
    (4096, 2): (0.9215 + 0.315 + 1.6015 + 0.750) * 1e-3,
    (1, 4): (0.021 + 0.009 + 0.031 + 0.019) * 1e-3,
    (8, 4): (0.022 + 0.010 + 0.032 + 0.019) * 1e-3,
    (32, 4): (0.022 + 0.010 + 0.032 + 0.020) * 1e-3,
    (64, 4): (0.023 + 0.011 + 0.033 + 0.020) * 1e-3,
    (4096, 4): (0.415 + 0.151 + 0.7785 + 0.392) * 1e-3,
    (4096, 8): (0.231 + 0.086 + 0.410 + 0.2425) * 1e-3,
}
# Engine error with the A100 preset (jointly fitted on vidur batch 1 / 4096 tokens and LLMCompass's TP4 layer).
A100_WITHIN_TOLERANCE = [(1, 1), (32, 1), (64, 1), (4096, 1), (4096, 2), (4096, 4), (4096, 8)]
A100_LAUNCH_BOUND_MISSES = [(8, 1), (1, 2), (8, 2), (32, 2), (64, 2), (1, 4), (8, 4), (32, 4), (64, 4)]

# Same early file family for A100: microsoft/vidur data/profiling/a100/mlp.csv at commit
# 7f14d6abd308fa7a619cfef2250342b353d19900, Llama-2-13B rows, same four medians (ms) summed.
VIDUR_A100_LLAMA2_13B_S = {
    (1, 1): (0.103 + 0.036 + 0.171 + 0.0885) * 1e-3,
    (8, 1): (0.1125 + 0.037 + 0.167 + 0.090) * 1e-3,
    (64, 1): (0.113 + 0.041 + 0.175 + 0.1045) * 1e-3,
    (1, 4): (0.029 + 0.013 + 0.0445 + 0.026) * 1e-3,
    (64, 4): (0.034 + 0.014 + 0.056 + 0.030) * 1e-3,
}


def _linears_s(
    tokens: float, tensor_parallel: float, acc_id: str = "h100-sxm", model: dict[str, float | bool] | None = None
) -> float:
    t = _priced(
        acc_id,
        batch=tokens,
        query_tokens=1.0,
        context_tokens=1.0,
        tensor_parallel=tensor_parallel,
        **(model or LLAMA2_13B),
    )
    return t["qkv"] + t["out_proj"] + t["ffn_up"] + t["ffn_down"]


@pytest.mark.parametrize(("tokens", "tensor_parallel"), list(VIDUR_H100_LLAMA2_7B_S))
def test_vidur_h100_llama2_7b_linears_over_batch_and_tp(tokens: int, tensor_parallel: int) -> None:
    """vidur H100 Llama-2-7B per-rank linears, batch 1-4096, TP 1-8 (VIDUR_H100_LLAMA2_7B_S). Engine error:
    -0.2 / +2.7 / -1.2 / -2.1 / -10.3 / +0.7% (TP1: 1, 8, 32, 64, 128, 4096 tokens), +0.6 / +2.0 / +0.4 / +1.6% (TP2),
    -0.3 / 0.0 / -0.8% (TP4), -8.3% (TP8, 4096). Tolerance 15%."""
    measured = VIDUR_H100_LLAMA2_7B_S[(tokens, tensor_parallel)]
    engine = _linears_s(float(tokens), float(tensor_parallel), "h100-sxm", LLAMA2_7B)
    assert engine == pytest.approx(measured, rel=TOLERANCE)


@pytest.mark.parametrize(("tokens", "tensor_parallel"), list(VIDUR_H100_LLAMA2_70B_S))
def test_vidur_h100_llama2_70b_linears_out_of_sample(tokens: int, tensor_parallel: int) -> None:
    """vidur H100 Llama-2-70B (GQA, 8 KV heads) per-rank linears, a model the H100 fit never saw: engine error
    +3.8 / +6.1 / +2.8 / +1.7% (TP1: 2, 8, 32, 128 tokens), +3.0 / -1.8 / -2.7 / -4.6% (TP4). Tolerance 15%."""
    measured = VIDUR_H100_LLAMA2_70B_S[(tokens, tensor_parallel)]
    engine = _linears_s(float(tokens), float(tensor_parallel), "h100-sxm", LLAMA2_70B)
    assert engine == pytest.approx(measured, rel=TOLERANCE)


@pytest.mark.xfail(
    strict=True,
    reason="known gap: at 256 tokens the measured GEMMs run at ~40% of H100 peak (tile shapes); the roofline still "
    "sees them weight-bound and gives 0.167 ms vs 0.260 ms (-36%)",
)
def test_vidur_h100_llama2_7b_linears_at_256_tokens() -> None:
    """vidur H100 Llama-2-7B TP1, 256 tokens: 0.260 ms. Tolerance 15%."""
    engine = _linears_s(256.0, 1.0, "h100-sxm", LLAMA2_7B)
    assert engine == pytest.approx(VIDUR_H100_LLAMA2_7B_256_TOKENS_S, rel=TOLERANCE)


def test_vidur_h100_decode_linears_are_flat_from_batch_1_to_64() -> None:
    """Early vidur H100 Llama-2-13B, TP1: 64 tokens take 1.06x the batch-1 time (0.372 vs 0.351 ms); decode GEMVs
    are weight-bound. Engine: 1.015x. Tolerance 15% on the ratio."""
    measured = VIDUR_H100_LLAMA2_13B_S[(64, 1)] / VIDUR_H100_LLAMA2_13B_S[(1, 1)]
    engine = _linears_s(64.0, 1.0) / _linears_s(1.0, 1.0)
    assert engine == pytest.approx(measured, rel=TOLERANCE)


def test_vidur_h100_tensor_parallel_4_divides_the_batch_1_time() -> None:
    """Early vidur H100 Llama-2-13B at batch 1: TP1 0.351 ms, TP4 0.100 ms per rank, i.e. 3.51x. Engine: 3.35x
    (weights/4 plus 3.8 us per kernel), -4.5%. Tolerance 15% on the ratio."""
    measured = VIDUR_H100_LLAMA2_13B_S[(1, 1)] / VIDUR_H100_LLAMA2_13B_S[(1, 4)]
    engine = _linears_s(1.0, 1.0) / _linears_s(1.0, 4.0)
    assert engine == pytest.approx(measured, rel=TOLERANCE)


@pytest.mark.xfail(
    strict=True,
    reason="known gap: the early vidur H100 set is 1.4-1.8x slower than the H100 preset (fitted on the later "
    "vidur H100 set); in it H100 is only 1.14x faster than A100, so it is not used for the fit",
)
@pytest.mark.parametrize(("tokens", "tensor_parallel"), list(VIDUR_H100_LLAMA2_13B_S))
def test_vidur_h100_llama2_13b_linears_absolute(tokens: int, tensor_parallel: int) -> None:
    """Early vidur H100 Llama-2-13B per-rank linears (VIDUR_H100_LLAMA2_13B_S). Tolerance 15%.
    Engine/measured: -33% (1, TP1), -33% (8), -36% (64), -45% (256), -30% (1, TP4), -45% (256, TP4)."""
    measured = VIDUR_H100_LLAMA2_13B_S[(tokens, tensor_parallel)]
    assert _linears_s(float(tokens), float(tensor_parallel)) == pytest.approx(measured, rel=TOLERANCE)


@pytest.mark.parametrize("tokens", [1, 8, 64])
def test_vidur_a100_llama2_13b_linears_tp1(tokens: int) -> None:
    """vidur A100 Llama-2-13B, TP1, per-layer linears: 0.399 / 0.407 / 0.434 ms at 1 / 8 / 64 tokens.
    The A100 preset (jointly fitted on Llama-2-7B and GPT-3 175B) gives +9.5% / +7.5% / +2.0% on this
    model it never saw. Tolerance 15%."""
    measured = VIDUR_A100_LLAMA2_13B_S[(tokens, 1)]
    assert _linears_s(float(tokens), 1.0, "a100-80gb") == pytest.approx(measured, rel=TOLERANCE)


@pytest.mark.xfail(
    strict=True,
    reason="known gap: at TP4 each rank's GEMVs are 4x smaller, so the 17 us per-kernel overhead fitted to "
    "LLMCompass's eager-PyTorch GEMVs dominates; vidur's kernels at TP4 show ~4 us (engine +42% / +21%)",
)
@pytest.mark.parametrize("tokens", [1, 64])
def test_vidur_a100_llama2_13b_linears_tp4(tokens: int) -> None:
    """vidur A100 Llama-2-13B, TP4, per-rank linears: 0.1125 ms (1 token), 0.134 ms (64). Tolerance 15%."""
    measured = VIDUR_A100_LLAMA2_13B_S[(tokens, 4)]
    assert _linears_s(float(tokens), 4.0, "a100-80gb") == pytest.approx(measured, rel=TOLERANCE)


def test_early_vidur_h100_set_is_barely_faster_than_a100() -> None:
    """Why the H100 absolute points are not used to refit the preset: in the same vidur profiling family the H100
    Llama-2-13B batch-1 linears (0.351 ms) are only 1.14x faster than A100's (0.3985 ms) although H100 SXM has
    1.64x the bandwidth (3.35 vs 2.039 TB/s, datasheets); the engine's ratio follows the datasheets. Order check:
    the measured speed-up is below 1.2 and the engine's above 1.5."""
    measured = VIDUR_A100_LLAMA2_13B_S[(1, 1)] / VIDUR_H100_LLAMA2_13B_S[(1, 1)]
    engine = _linears_s(1.0, 1.0, "a100-80gb") / _linears_s(1.0, 1.0, "h100-sxm")
    assert measured < 1.2 and engine > 1.5


@pytest.mark.parametrize(("tokens", "tensor_parallel"), A100_WITHIN_TOLERANCE)
def test_vidur_a100_llama2_7b_linears_over_batch_and_tp(tokens: int, tensor_parallel: int) -> None:
    """vidur A100 Llama-2-7B per-rank linears (VIDUR_A100_LLAMA2_7B_S). Engine error: +13.9 / +11.9 / +10.7 / +0.8%
    (TP1: 1, 32, 64, 4096 tokens), +6.2 / +11.7 / +3.5% (4096 tokens at TP2 / TP4 / TP8). Tolerance 15%."""
    measured = VIDUR_A100_LLAMA2_7B_S[(tokens, tensor_parallel)]
    engine = _linears_s(float(tokens), float(tensor_parallel), "a100-80gb", LLAMA2_7B)
    assert engine == pytest.approx(measured, rel=TOLERANCE)


@pytest.mark.xfail(
    strict=True,
    reason="known gap: A100's 17 us per kernel comes from LLMCompass's eager-PyTorch GEMVs; vidur's launches cost "
    "~4.5 us, so its small per-rank GEMVs come out +17% (TP1, 8 tokens), +24..+36% (TP2), +48..+59% (TP4). "
    "No single A100 calibration fits both sets within 15% (best minimax 26%), so the preset is kept.",
)
@pytest.mark.parametrize(("tokens", "tensor_parallel"), A100_LAUNCH_BOUND_MISSES)
def test_vidur_a100_llama2_7b_small_per_rank_gemvs(tokens: int, tensor_parallel: int) -> None:
    """vidur A100 Llama-2-7B per-rank linears at small batch with TP (VIDUR_A100_LLAMA2_7B_S). Tolerance 15%."""
    measured = VIDUR_A100_LLAMA2_7B_S[(tokens, tensor_parallel)]
    engine = _linears_s(float(tokens), float(tensor_parallel), "a100-80gb", LLAMA2_7B)
    assert engine == pytest.approx(measured, rel=TOLERANCE)
