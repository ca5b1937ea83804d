"""Per-op FLOP and bytes of a decoder layer: exact formulas (dse.engines.decoder_ops), and pricing through the
one device model."""

from __future__ import annotations

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.decoder_ops import OP_CLASS, OP_NAMES, decoder_layer_ops, kv_cache_bytes_per_token, price_layer_ops
from dse.engines.device import BOUND_LINK, Device


def _ops(**overrides: object) -> dict:  # type: ignore[type-arg]
    args: dict[str, object] = dict(
        batch=8.0,
        query_tokens=1.0,
        context_tokens=1024.0,
        hidden_size=4096.0,
        num_heads=32.0,
        num_kv_heads=32.0,
        ffn_hidden_size=16384.0,
        gated_ffn=False,
        layernorm=True,
        tensor_parallel=1.0,
        weight_bytes=2.0,
        activation_bytes=2.0,
        kv_cache_bytes=2.0,
    )
    args.update(overrides)
    return decoder_layer_ops(**args)  # type: ignore[arg-type]


def test_every_op_is_present_in_order() -> None:
    assert tuple(_ops()) == OP_NAMES


def test_rope_and_the_kv_cache_write_follow_the_qkv_gemm_with_exact_traffic() -> None:
    """GQA at TP2, 8 tokens, an fp8 cache: rope reads and writes the rank's queries (a*d_h/tp = 2048) and keys
    (a_kv*d_h/tp = 512) in fp16, 3 FLOP each; the write reads the new K and V (1024 per token) in fp16 and stores
    them in fp8. Without the flags neither op exists."""
    ops = _ops(num_kv_heads=8.0, tensor_parallel=2.0, kv_cache_bytes=1.0, rope=True, kv_cache_write=True)
    names = list(ops)
    assert names[names.index("qkv") + 1 : names.index("qkv") + 3] == ["rope", "kv_cache_write"]
    assert set(names) - {"rope", "kv_cache_write"} == set(OP_NAMES)
    assert ops["rope"].flop == 8 * (2048 + 512) * 3.0
    assert ops["rope"].bytes_moved == 8 * (2048 + 512) * 2.0 * 2.0
    assert ops["kv_cache_write"].bytes_moved == 8 * 1024 * (2.0 + 1.0)
    assert OP_CLASS["rope"] == OP_CLASS["kv_cache_write"] == "vector"
    assert "rope" not in _ops() and "kv_cache_write" not in _ops()


def test_fp16_mha_decode_attention_is_about_one_flop_per_byte_whatever_the_batch() -> None:
    """Decode attention is ~1 FLOP/byte for fp16 MHA, whatever B: 2*a*d_h*s FLOP per request against
    a_kv*d_h*s*2 bytes of K (or V), a/a_kv = 1 (derived from the op counts). Tolerance 2%
    (the query and the score vector add d_h-th of the K/V traffic)."""
    batch = np.array([1.0, 4.0, 32.0, 256.0, 1024.0])
    ops = _ops(batch=batch)
    for name in ("score", "context"):
        intensity = ops[name].flop / ops[name].bytes_moved
        np.testing.assert_allclose(intensity, 1.0, rtol=0.02)
        assert np.ptp(intensity) < 1e-3  # independent of the batch


def test_gqa_raises_attention_intensity_by_the_group_size() -> None:
    """GQA with a/a_kv = 8 reads 8x less K/V per FLOP: intensity ~8 FLOP/byte (Llama-3 style). Tolerance 10%:
    the written score vector (a*s elements) adds a/(a_kv*d_h) = 1/16 to the K traffic."""
    ops = _ops(num_kv_heads=4.0)
    assert ops["score"].flop / ops["score"].bytes_moved == pytest.approx(8.0, rel=0.10)


def test_matmul_flop_match_the_reference_formulas_exactly() -> None:
    """QKV 2*T*h*(h+2*a_kv*d_h)/tp, out-proj 2*T*h^2/tp, FFN 4*T*h*d_ff/tp (GELU), 6*T*h*d_ff/tp (SwiGLU). Exact."""
    t, h, ff, tp = 8.0, 4096.0, 16384.0, 4.0
    ops = _ops(tensor_parallel=tp, num_kv_heads=8.0)
    d_h = h / 32.0
    assert ops["qkv"].flop == 2 * t * h * (h + 2 * 8 * d_h) / tp
    assert ops["out_proj"].flop == 2 * t * h * h / tp
    assert ops["ffn_up"].flop + ops["ffn_down"].flop == 4 * t * h * ff / tp
    gated = _ops(tensor_parallel=tp, gated_ffn=True, ffn_hidden_size=11008.0)
    assert gated["ffn_up"].flop + gated["ffn_down"].flop == 6 * t * h * 11008.0 / tp


def test_prefill_attention_flop_exact() -> None:
    """Prefill: 2*B*a*s^2*d_h for each of score and context. Exact."""
    b, s = 4.0, 2048.0
    ops = _ops(batch=b, query_tokens=s, context_tokens=s)
    assert ops["score"].flop == ops["context"].flop == 2 * b * 32 * s * s * 128


def test_weight_and_kv_dtypes_scale_the_bytes() -> None:
    """fp8/int8 weights halve the weight traffic of a batch-1 GEMV; an fp8 KV cache halves K/V reads. 1% tolerance."""
    fp16, fp8 = _ops(batch=1.0), _ops(batch=1.0, weight_bytes=1.0, kv_cache_bytes=1.0)
    assert fp8["ffn_down"].bytes_moved / fp16["ffn_down"].bytes_moved == pytest.approx(0.5, rel=0.01)
    assert fp8["score"].bytes_moved / fp16["score"].bytes_moved == pytest.approx(0.5, rel=0.01)


def test_all_reduces_only_under_tensor_parallelism() -> None:
    """T*h*w bytes per rank after attention and after the FFN when tp > 1, nothing when tp = 1. Exact."""
    assert float(_ops()["all_reduce_attn"].link_bytes) == 0.0
    assert float(_ops(tensor_parallel=4.0)["all_reduce_ffn"].link_bytes) == 8 * 4096 * 2


def test_kv_cache_bytes_per_token_exact() -> None:
    """2 * L * a_kv * d_h * w: Llama-2-7B fp16 holds 0.5 MiB per token. Exact."""
    got = kv_cache_bytes_per_token(
        num_layers=32.0, hidden_size=4096.0, num_heads=32.0, num_kv_heads=32.0, kv_cache_bytes=2.0
    )
    assert got == 2 * 32 * 4096 * 2 == 524288


def test_ops_are_priced_by_the_device_model_exactly() -> None:
    """price_layer_ops gives each non-link op Device.op_time_s of its FLOP, bytes, kernels and class (the one
    roofline), and each collective its link time with the link bound. Exact."""
    device = Device.from_accelerator(default_catalog().get("accelerators", "a100-80gb"), "fp16")
    ops = _ops(tensor_parallel=4.0, batch=np.array([1.0, 64.0]), fused_qkv=False)
    priced = price_layer_ops(ops, device, tensor_parallel=4.0, link_bandwidth_bytes_per_s=3e11, link_latency_s=4e-6)
    for name, op in ops.items():
        op_class = OP_CLASS[name]
        if op_class == "link":
            assert np.all(priced[name].bound == BOUND_LINK) and np.all(priced[name].time_s > 0)
            continue
        expected = device.op_time_s(op.flop, op.bytes_moved, kernels=op.kernels, op_class=op_class)
        np.testing.assert_array_equal(priced[name].time_s, expected.time_s)
        np.testing.assert_array_equal(priced[name].bound, expected.bound)
