"""Published real-hardware figures beyond the calibration points (docs/inference.md, "Further published figures").

Source of every number here: microsoft/vidur, data/profiling/h100/mlp.csv at commit
6d98aa8f71696520acc603d87439e77cc78160a7 (an early H100 profiling set), rows of Llama-2-13B
(n_head 40, n_embd 5120, n_expanded_embd 13824, gated MLP): the median (ms) of attn_pre_proj (fused QKV),
attn_post_proj, mlp_up_proj (gate+up) and mlp_down_proj, summed per row.

The presets are used as they are (one calibration per accelerator). What the roofline captures --
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


def _linears_s(tokens: float, tensor_parallel: float) -> float:
    t = _priced(
        "h100-sxm",
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
