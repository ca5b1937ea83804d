"""Published real-hardware figures beyond the calibration points (docs/inference.md, "Further published figures").

Sources: microsoft/vidur, data/profiling/h100/mlp.csv at commit 6d98aa8f71696520acc603d87439e77cc78160a7
and data/profiling/a100/mlp.csv at commit 7f14d6abd308fa7a619cfef2250342b353d19900 (early profiling sets),
rows of Llama-2-13B
(n_head 40, n_embd 5120, n_expanded_embd 13824, gated MLP): the median (ms) of attn_pre_proj (fused QKV),
attn_post_proj, mlp_up_proj (gate+up) and mlp_down_proj, summed per row.

The presets are used as they are (one calibration per accelerator). A100 at TP1 is predicted within 10%
on this model it was not fitted to. On H100, what the roofline captures --
the flat memory-bound region and how weight traffic divides with tensor parallelism -- is tested
with the issue's 15% tolerance. The absolute times are a recorded miss (strict xfail): this
earlier set reads Llama-2-13B's weights at ~54% of H100 peak bandwidth at batch 1, while the
Llama-2-7B point the H100 preset is calibrated on (0.156 ms, 77.5%) implies a higher rate; no
single (memory_efficiency, kernel_overhead_s) pair fits both (solving the two batch-1 points
gives a negative overhead), so the preset was not refitted.
"""

from __future__ import annotations

import pytest

from tests.engines.test_inference_calibration import _priced

TOLERANCE = 0.15

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


# Same file family for A100: microsoft/vidur data/profiling/a100/mlp.csv at commit
# 7f14d6abd308fa7a619cfef2250342b353d19900, Llama-2-13B rows, same four medians (ms) summed.
VIDUR_A100_LLAMA2_13B_S = {
    (1, 1): (0.103 + 0.036 + 0.171 + 0.0885) * 1e-3,
    (8, 1): (0.1125 + 0.037 + 0.167 + 0.090) * 1e-3,
    (64, 1): (0.113 + 0.041 + 0.175 + 0.1045) * 1e-3,
    (1, 4): (0.029 + 0.013 + 0.0445 + 0.026) * 1e-3,
    (64, 4): (0.034 + 0.014 + 0.056 + 0.030) * 1e-3,
}


def _linears_s(tokens: float, tensor_parallel: float, acc_id: str = "h100-sxm") -> float:
    t = _priced(
        acc_id,
        batch=tokens,
        query_tokens=1.0,
        context_tokens=1.0,
        tensor_parallel=tensor_parallel,
        **LLAMA2_13B,
    )
    return t["qkv"] + t["out_proj"] + t["ffn_up"] + t["ffn_down"]


def test_vidur_h100_decode_linears_are_flat_from_batch_1_to_64() -> None:
    """vidur H100 Llama-2-13B, TP1: 64 tokens take 1.06x the batch-1 time (0.372 vs 0.351 ms); decode GEMVs
    are weight-bound. Engine: 1.02x. Tolerance 15% on the ratio."""
    measured = VIDUR_H100_LLAMA2_13B_S[(64, 1)] / VIDUR_H100_LLAMA2_13B_S[(1, 1)]
    engine = _linears_s(64.0, 1.0) / _linears_s(1.0, 1.0)
    assert engine == pytest.approx(measured, rel=TOLERANCE)


def test_vidur_h100_tensor_parallel_4_divides_the_batch_1_time() -> None:
    """vidur H100 Llama-2-13B at batch 1: TP1 0.351 ms, TP4 0.100 ms per rank, i.e. 3.51x. Engine: 4.0x
    (weights/4, no per-kernel overhead in the H100 preset), +14%. Tolerance 15% on the ratio."""
    measured = VIDUR_H100_LLAMA2_13B_S[(1, 1)] / VIDUR_H100_LLAMA2_13B_S[(1, 4)]
    engine = _linears_s(1.0, 1.0) / _linears_s(1.0, 4.0)
    assert engine == pytest.approx(measured, rel=TOLERANCE)


@pytest.mark.xfail(
    strict=True,
    reason="known gap: this early vidur H100 set is 30-51% slower than the H100 preset (calibrated on the "
    "0.156 ms Llama-2-7B point); the two sets admit no common memory_efficiency/kernel_overhead_s fit",
)
@pytest.mark.parametrize(("tokens", "tensor_parallel"), list(VIDUR_H100_LLAMA2_13B_S))
def test_vidur_h100_llama2_13b_linears_absolute(tokens: int, tensor_parallel: int) -> None:
    """vidur H100 Llama-2-13B per-rank linears (VIDUR_H100_LLAMA2_13B_S). Tolerance 15%.
    Engine/measured: -30% (1, TP1), -30% (8), -33% (64), -42% (256), -39% (1, TP4), -51% (256, TP4)."""
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
