"""Weight-only quantized GEMMs: fp8 weights under fp16 activations read their weights at 1 byte and compute at
the fp16 kernel's rate (the weights are widened in the main loop)."""

from __future__ import annotations

import pytest

from dse.catalog import default_catalog
from dse.catalog.calibration import load_fits, stack_device
from dse.engines import kernels
from dse.scenarios.registry import KINDS

CATALOG = default_catalog()


def test_narrow_weights_cut_exactly_their_bytes_and_no_compute():
    spec = CATALOG.get("stacks", "vllm-cuda-graphs")
    model = stack_device(load_fits(CATALOG.root), CATALOG.get("accelerators", "h100-sxm"), "fp16", spec).device.gemm
    m, n, k = 16.0, 28672.0, 8192.0
    wide = kernels.gemm_time_s(model, m, n, k)
    narrow = kernels.gemm_time_s(model, m, n, k, b_bytes=1.0)
    assert narrow.compute_s == wide.compute_s
    saved = k * n * (model.input_bytes - 1.0) / (model.memory_bandwidth_bytes_per_s * model.memory_efficiency)
    assert wide.memory_s - narrow.memory_s == pytest.approx(saved, rel=1e-12)
    assert kernels.gemm_time_s(model, m, n, k, b_bytes=model.input_bytes).time_s == wide.time_s


def _decode(weight_dtype: str, activation_dtype: str) -> dict[str, float]:
    kind = KINDS["inference"]
    inputs = dict(
        model="llama3.1-8b",
        system="gpu_only",
        accelerator="h100-sxm",
        comparison_gpu="h100-sxm",
        memory=None,
        batch_size=1,
        weight_dtype=weight_dtype,
        activation_dtype=activation_dtype,
        kv_cache_dtype=activation_dtype,
        software_stack="tensorrt-llm",
    )
    result = kind.evaluate(kind.resolve(kind.inputs_model.model_validate(inputs), CATALOG))
    return {m.key: m.value for m in result.metrics}


def test_fp8_weights_under_fp16_activations_speed_up_memory_bound_decode():
    """Batch-1 decode reads the weights: W8A16 is ~1.7x faster than W16A16 and a little slower than W8A8."""
    w16, w8a16, w8a8 = _decode("fp16", "fp16"), _decode("fp8", "fp16"), _decode("fp8", "fp8")
    assert 1.5 < w16["time_per_output_token_s"] / w8a16["time_per_output_token_s"] < 2.0
    assert w8a8["time_per_output_token_s"] < w8a16["time_per_output_token_s"]
