"""A stack whose fp8 GEMMs keep fp16 activations and an fp16 attention (TensorRT-LLM v0.5/v0.6.1 fp8 engines)."""

from __future__ import annotations

import dataclasses

import pytest

from dse.catalog import default_catalog
from dse.catalog.calibration import load_fits, stack_device
from dse.scenarios.kinds.inference.inputs import InferenceInputs, resolve
from dse.scenarios.kinds.serving.inputs import ServingInputs
from dse.scenarios.kinds.serving.inputs import resolve as resolve_serving


@pytest.fixture(scope="module")
def catalog():
    return default_catalog()


def test_activations_are_stored_in_the_stacks_wider_dtype_only_under_narrower_work(catalog):
    stack = catalog.get("stacks", "tensorrt-llm-0.6")
    assert stack.activation_storage_dtype == "fp16"
    assert stack.stored_activation_dtype("fp8") == "fp16"
    assert stack.stored_activation_dtype("fp16") == "fp16"
    assert stack.stored_activation_dtype("bf16") == "bf16"
    plain = dataclasses.replace(stack, activation_storage_dtype=None)
    assert plain.stored_activation_dtype("fp8") == "fp8"


def test_both_kinds_move_fp16_activations_for_fp8_gemms_under_the_stack(catalog):
    fp8 = {"weight_dtype": "fp8", "activation_dtype": "fp8", "kv_cache_dtype": "fp8"}
    inference = resolve(
        InferenceInputs(
            model="llama2-7b",
            system="gpu_only",
            accelerator="h100-sxm",
            memory=None,
            software_stack="tensorrt-llm-0.6",
            **fp8,
        ),
        catalog,
    )
    assert (inference.weight_bytes, inference.activation_bytes, inference.kv_cache_bytes) == (1.0, 2.0, 1.0)
    serving = resolve_serving(
        ServingInputs(model="llama2-7b", accelerator="h100-sxm", software_stack="tensorrt-llm-0.6", **fp8), catalog
    )
    assert serving.activation_bytes == 2.0
    # a stack without the field keeps the work's width
    vllm = resolve_serving(
        ServingInputs(model="llama2-7b", accelerator="h100-sxm", software_stack="vllm-cuda-graphs", **fp8), catalog
    )
    assert vllm.activation_bytes == 1.0


def test_attention_in_fp16_beside_fp8_gemms_takes_the_fp16_fit_at_the_fp16_peak(catalog):
    h100 = catalog.get("accelerators", "h100-sxm")
    fits = load_fits(catalog.root)
    old = stack_device(fits, h100, "fp8", catalog.get("stacks", "tensorrt-llm-0.6"))
    fp16 = stack_device(fits, h100, "fp16", catalog.get("stacks", "tensorrt-llm-0.6"))
    assert old.gemm_fit is not None and "fp8" in old.gemm_fit
    assert old.prefill_attention_fit == fp16.prefill_attention_fit
    assert old.device.prefill_attention is not None
    assert old.device.prefill_attention.peak_flops_per_s == h100.peak_for("fp16")
    assert old.device.matrix_flops_per_s == h100.peak_for("fp8")
    assert old.device.prefill_attention_time_s(1, 32, 2048, 2048, 128, causal=True).time_s == pytest.approx(
        fp16.device.prefill_attention_time_s(1, 32, 2048, 2048, 128, causal=True).time_s, rel=1e-12
    )
