"""A stack whose MoE GEMMs keep the experts apart from the rest (TensorRT-LLM v0.9.0: no fp8 experts, CUTLASS's
Ampere grouped GEMM on Hopper): the experts' dtype, their weight bytes, their GEMM model and the footprint."""

from __future__ import annotations

import dataclasses

import pytest

from dse.catalog import default_catalog
from dse.catalog.calibration import AMPERE_KERNEL_PROBE_FIT, ampere_kernel_share, load_fits, stack_device
from dse.engines.decoder_ops import decoder_layer_ops, price_layer_ops
from dse.engines.inference import model_shape
from dse.engines.kernels import AttentionKernelModel
from dse.scenarios.kinds.serving import studies
from dse.scenarios.kinds.serving.inputs import ServingInputs, resolve
from dse.scenarios.shared.moe_experts import moe_expert_dtype

CATALOG = default_catalog()
FITS = load_fits(CATALOG.root)
V090 = CATALOG.get("stacks", "tensorrt-llm-0.9")
MIXTRAL = CATALOG.get("llms", "mixtral-8x7b")


def test_an_fp8_checkpoint_keeps_fp16_experts_under_v090_alone() -> None:
    assert V090.moe_expert_dtype("fp8", "fp8") == "fp16"  # fp16 activations between kernels: the network's dtype
    assert V090.moe_expert_dtype("int8", "fp16") == "int8"  # weight-only experts run
    assert V090.moe_expert_dtype("fp16", "fp16") == "fp16"
    assert CATALOG.get("stacks", "tensorrt-llm").moe_expert_dtype("fp8", "fp8") == "fp8"
    assert moe_expert_dtype(V090, MIXTRAL, "fp8", "fp8") == "fp16"
    assert moe_expert_dtype(V090, MIXTRAL, "fp16", "fp16") is None
    assert moe_expert_dtype(V090, CATALOG.get("llms", "llama2-7b"), "fp8", "fp8") is None  # dense: no experts
    assert moe_expert_dtype(None, MIXTRAL, "fp8", "fp8") is None


def test_the_ampere_share_is_flashattention2s_h100_over_a100_efficiency() -> None:
    h100, a100 = FITS[f"h100-sxm.{AMPERE_KERNEL_PROBE_FIT}"].model, FITS[f"a100-80gb.{AMPERE_KERNEL_PROBE_FIT}"].model
    assert isinstance(h100, AttentionKernelModel) and isinstance(a100, AttentionKernelModel)
    assert h100.head_dims == a100.head_dims == (64.0, 128.0)
    expected = (h100.efficiency[0] / a100.efficiency[0] + h100.efficiency[1] / a100.efficiency[1]) / 2.0
    assert ampere_kernel_share(FITS, "h100-sxm") == pytest.approx(expected, rel=1e-12)
    assert 0.5 < expected < 0.56  # about the A100's rate per SM and clock on Hopper
    assert ampere_kernel_share(FITS, "a100-80gb") == 1.0
    assert ampere_kernel_share(FITS, "h800-sxm") == 1.0  # no FlashAttention-2 table of its own


def test_the_experts_gemm_is_the_fp16_fit_at_the_ampere_share_of_the_fp16_peak() -> None:
    h100 = CATALOG.get("accelerators", "h100-sxm")
    device = stack_device(FITS, h100, "fp8", V090, expert_dtype="fp16").device
    fp16_fit = FITS["h100-sxm.fp16.vidur-pytorch.gemm"].model
    assert device.gemm is not None and device.gemm.input_bytes == 1.0  # the attention GEMMs stay fp8
    assert device.expert_gemm == dataclasses.replace(
        fp16_fit, peak_flops_per_s=h100.peak_for("fp16") * ampere_kernel_share(FITS, "h100-sxm")
    )
    # on the A100 the Ampere kernel is the part's own: the experts' model is the GEMM model itself
    a100 = stack_device(FITS, CATALOG.get("accelerators", "a100-80gb"), "fp16", V090).device
    assert a100.expert_gemm == a100.gemm
    # a stack without the flags leaves the experts on the GEMM model
    assert stack_device(FITS, h100, "fp8", CATALOG.get("stacks", "tensorrt-llm")).device.expert_gemm is None


def _mixtral_ops(expert_weight_bytes: float | None):
    shape = model_shape(MIXTRAL)
    return decoder_layer_ops(
        batch=64.0,
        query_tokens=1.0,
        context_tokens=1024.0,
        hidden_size=shape.hidden_size,
        num_heads=shape.num_heads,
        num_kv_heads=shape.num_kv_heads,
        ffn_hidden_size=shape.ffn_hidden_size,
        gated_ffn=True,
        layernorm=False,
        tensor_parallel=2.0,
        weight_bytes=1.0,
        activation_bytes=2.0,
        kv_cache_bytes=1.0,
        moe=shape.moe,
        moe_layer_fraction=shape.moe_layer_fraction,
        expert_weight_bytes=expert_weight_bytes,
    )


def test_fp16_experts_double_the_experts_weight_bytes_not_the_routers_or_attentions() -> None:
    fp8, fp16 = _mixtral_ops(None), _mixtral_ops(2.0)
    h, d_e, e, tp = 4096.0, 14336.0, 8.0, 2.0
    touched = e * (1.0 - (1.0 - 2.0 / e) ** 64.0)
    assert fp16["ffn_up"].bytes_moved - fp8["ffn_up"].bytes_moved == pytest.approx(touched * h * 2.0 * d_e / tp)
    assert fp16["ffn_down"].bytes_moved - fp8["ffn_down"].bytes_moved == pytest.approx(touched * d_e * h / tp)
    assert fp16["qkv"] == fp8["qkv"] and fp16["out_proj"] == fp8["out_proj"]
    assert fp16["ffn_up"].expert_gemms == (False, True)  # the router, then the experts' grouped GEMM
    assert fp16["ffn_down"].expert_gemms == (True,)
    assert fp16["ffn_up"].gemm_weight_bytes == 2.0


def test_the_experts_gemms_are_priced_on_the_experts_model() -> None:
    h100 = CATALOG.get("accelerators", "h100-sxm")
    device = stack_device(FITS, h100, "fp8", V090, expert_dtype="fp16").device
    ops = _mixtral_ops(2.0)
    links = {"tensor_parallel": 2.0, "link_bandwidth_bytes_per_s": 450e9, "link_latency_s": 5e-6}
    priced = price_layer_ops(ops, device, **links)["ffn_down"]
    (m, n, k), groups = ops["ffn_down"].gemms[0], ops["ffn_down"].gemm_groups[0]
    expected = device.gemm_time_s(m, n, k, b_bytes=2.0, groups=groups, expert=True).time_s
    assert priced.time_s == pytest.approx(expected, rel=1e-12)
    assert expected != pytest.approx(device.gemm_time_s(m, n, k, b_bytes=2.0, groups=groups).time_s, rel=1e-3)


def test_the_serving_footprint_counts_the_experts_at_their_own_width() -> None:
    def inputs(**kw: object) -> ServingInputs:
        return ServingInputs.model_validate(
            dict(model="mixtral-8x7b", accelerator="h100-sxm", tensor_parallel=2, weight_dtype="fp8", **kw)
        )

    v090 = resolve(inputs(software_stack="tensorrt-llm-0.9", activation_dtype="fp8", kv_cache_dtype="fp8"), CATALOG)
    plain = resolve(inputs(software_stack="tensorrt-llm", activation_dtype="fp8", kv_cache_dtype="fp8"), CATALOG)
    assert (v090.expert_dtype, v090.expert_weight_bytes) == ("fp16", 2.0)
    assert (plain.expert_dtype, plain.expert_weight_bytes) == (None, None)
    routed = 32 * 8 * 3 * 4096 * 14336  # layers x experts x (gate, up, down) x h x expert width
    extra = studies.memory(v090).weights_bytes_per_device - studies.memory(plain).weights_bytes_per_device
    assert extra == pytest.approx(routed * (2.0 - 1.0) / 2.0, rel=1e-9)
