"""Software stacks and the device they give an accelerator: fit choice and fallbacks, roofline
unchanged without a stack, per-op pricing by shape, fused ops, broadcasting."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.catalog.calibration import load_fits, stack_device
from dse.engines.decoder_ops import decoder_layer_ops, price_layer_ops
from dse.engines.device import Device
from dse.engines.inference import run_inference
from dse.engines.kernels import gemm_time_s
from dse.scenarios.kinds.inference.inputs import InferenceInputs, engine_inputs, resolve

CATALOG = default_catalog()
FITS = load_fits(CATALOG.root)
STACKS = CATALOG.ids("stacks")


def _device(acc: str, dtype: str, stack: str | None):
    spec = None if stack is None else CATALOG.get("stacks", stack)
    return stack_device(FITS, CATALOG.get("accelerators", acc), dtype, spec)


def test_every_stack_preset_cites_its_constants() -> None:
    assert set(STACKS) >= {"pytorch-eager", "vllm-cuda-graphs", "tensorrt-llm", "megatron-core-te", "torch-compile"}
    for stack in CATALOG.items("stacks"):
        assert stack.source.strip()
        assert "elementwise_launch_overhead_s" in stack.field_sources
        assert stack.gemm_fit_for("fp16") is not None


@pytest.mark.parametrize(
    ("acc", "dtype", "stack", "gemm_fit"),
    [
        ("a100-80gb", "fp16", "vllm-cuda-graphs", "a100-80gb.fp16.vidur-pytorch.gemm"),
        ("a100-80gb", "fp16", "pytorch-eager", "a100-80gb.bf16.pytorch-eager-wallclock.gemm"),  # bf16 sibling
        ("a100-40gb", "fp16", "vllm-cuda-graphs", "a100-80gb.fp16.vidur-pytorch.gemm"),
        ("h100-sxm", "fp16", "vllm-cuda-graphs", "h100-sxm.fp16.vidur-pytorch.gemm"),
        ("h200-sxm", "bf16", "vllm-cuda-graphs", "h100-sxm.fp16.vidur-pytorch.gemm"),
        ("h100-sxm", "fp8", "tensorrt-llm", "h800-sxm.fp8.deepgemm.gemm"),
        ("h200-sxm", "fp8", "vllm-cuda-graphs", "h800-sxm.fp8.deepgemm.gemm"),
    ],
)
def test_fit_choice_and_borrowing(acc: str, dtype: str, stack: str, gemm_fit: str) -> None:
    chosen = _device(acc, dtype, stack)
    assert chosen.gemm_fit == gemm_fit
    spec = CATALOG.get("accelerators", acc)
    gemm = chosen.device.gemm
    assert gemm is not None
    # a borrowed fit keeps its fractions but takes this accelerator's own peak and bandwidth
    assert gemm.peak_flops_per_s == spec.peak_for(dtype)
    assert gemm.memory_bandwidth_bytes_per_s == spec.memory_bandwidth_bytes_per_s
    assert gemm.compute_efficiency == FITS[gemm_fit].model.compute_efficiency  # type: ignore[union-attr]


def test_h100_prefers_flash_attention_3_and_a100_falls_back_to_2() -> None:
    assert (
        _device("h100-sxm", "fp16", "tensorrt-llm").prefill_attention_fit
        == "h100-sxm.fp16.flash-attention-3.attention_fwd"
    )
    a100 = _device("a100-80gb", "fp16", "tensorrt-llm")
    assert a100.prefill_attention_fit == "a100-80gb.fp16.flash-attention-2.attention_fwd_bwd"
    assert a100.device.prefill_attention is not None and a100.device.prefill_attention.flop_multiplier == 1.0


def test_the_forward_backward_table_comes_from_the_forward_kernel_only() -> None:
    """Training's attention backward uses the same kernel's forward + backward table where the forward has its
    own (FlashAttention-2 on H100); none for FlashAttention-3 (no such table): priced from its forward."""
    h100 = _device("h100-sxm", "bf16", "megatron-core-te").device
    assert h100.attention_fwd_bwd is not None and h100.attention_fwd_bwd.flop_multiplier == 3.5
    assert h100.prefill_attention is not None and h100.prefill_attention.efficiency != h100.attention_fwd_bwd.efficiency
    # A100's only table is the forward + backward one, already the forward's model: 2.5x the forward is its backward
    assert _device("a100-80gb", "bf16", "megatron-core-te").device.attention_fwd_bwd is None
    assert _device("h100-sxm", "fp16", "tensorrt-llm").device.attention_fwd_bwd is None


@pytest.mark.parametrize(
    ("acc", "stack"), [("neupims-npu", "vllm-cuda-graphs"), ("h100-sxm", "pytorch-eager"), ("a100-80gb", None)]
)
def test_no_fit_means_the_roofline_unchanged(acc: str, stack: str | None) -> None:
    chosen = _device(acc, "fp16", stack)
    assert chosen.device.stack is None and chosen.gemm_fit is None
    assert chosen.device == Device.from_accelerator(CATALOG.get("accelerators", acc), "fp16")


def _layer(**overrides):
    shape = dict(
        batch=8.0, query_tokens=1.0, context_tokens=1024.0, hidden_size=4096.0, num_heads=32.0, num_kv_heads=32.0,
        ffn_hidden_size=11008.0, gated_ffn=True, layernorm=False, tensor_parallel=1.0, weight_bytes=2.0,
        activation_bytes=2.0, kv_cache_bytes=2.0,
    )  # fmt: skip
    shape.update(overrides)
    return decoder_layer_ops(**shape)


def _price(ops, device):
    return price_layer_ops(ops, device, tensor_parallel=1.0, link_bandwidth_bytes_per_s=300e9, link_latency_s=4.2e-6)


def test_matrix_ops_take_the_fitted_gemm_time() -> None:
    device = _device("a100-80gb", "fp16", "vllm-cuda-graphs").device
    assert device.gemm is not None
    priced = _price(_layer(), device)
    expected = gemm_time_s(device.gemm, 8.0, 11008.0 * 2, 4096.0).time_s
    assert float(priced["ffn_up"].time_s) == pytest.approx(float(expected))


def test_fused_ops_cost_no_launch_and_fused_attention_holds_softmax() -> None:
    vllm = _price(_layer(), _device("a100-80gb", "fp16", "vllm-cuda-graphs").device)
    megatron = _price(_layer(), _device("a100-80gb", "fp16", "megatron-core-te").device)
    eager = _price(_layer(), _device("a100-80gb", "fp16", "pytorch-eager").device)
    assert float(vllm["softmax"].time_s) == 0.0 and float(eager["softmax"].time_s) > 10e-6
    assert float(megatron["norm_attn"].time_s) < float(vllm["norm_attn"].time_s)
    launch = CATALOG.get("stacks", "vllm-cuda-graphs").elementwise_launch_overhead_s
    assert float(vllm["norm_attn"].time_s) - float(megatron["norm_attn"].time_s) == pytest.approx(launch)


def test_prefill_attention_uses_the_flash_attention_model() -> None:
    device = _device("h100-sxm", "fp16", "vllm-cuda-graphs").device
    priced = _price(_layer(query_tokens=2048.0, context_tokens=2048.0, batch=1.0, prefill=True), device)
    whole = device.prefill_attention_time_s(1.0, 32.0, 2048.0, 2048.0, 128.0, causal=True)
    assert whole is not None
    total = float(priced["score"].time_s) + float(priced["context"].time_s)
    assert total == pytest.approx(float(whole.time_s))


def test_stack_device_broadcasts_over_swept_accelerator_numbers() -> None:
    r = resolve(
        InferenceInputs.model_validate(
            {"model": "llama2-7b", "system": "gpu_only", "accelerator": "a100-80gb", "memory": None}
        ),
        CATALOG,
    )
    swept_acc = dataclasses.replace(r.accelerator, memory_bandwidth_bytes_per_s=np.array([1.0e12, 2.0e12, 4.0e12]))
    swept = dataclasses.replace(r, accelerator=swept_acc, batch_size=np.array([[1.0], [64.0]]))  # type: ignore[arg-type]
    result = run_inference(**engine_inputs(swept))
    tpot = np.asarray(result.time_per_output_token_s)
    assert tpot.shape == (2, 3) and np.all(np.isfinite(tpot))
    assert np.all(np.diff(tpot, axis=1) < 0)  # more bandwidth, faster decode


@pytest.mark.parametrize(
    ("acc", "dtype", "stack"), [("h100-sxm", "fp8", "tensorrt-llm"), ("a100-80gb", "fp16", "pytorch-eager")]
)
def test_decode_without_gqa_sharing_reads_the_cache_once_per_query_head(acc: str, dtype: str, stack: str) -> None:
    sharing = _device(acc, dtype, stack).device
    assert sharing.stack is not None and sharing.stack.decode_attention_shares_kv_heads
    per_head = dataclasses.replace(
        sharing, stack=dataclasses.replace(sharing.stack, decode_attention_shares_kv_heads=False)
    )
    batch = np.array([1.0, 64.0, 512.0])
    gqa = _layer(batch=batch, num_heads=64.0, num_kv_heads=8.0, hidden_size=8192.0)
    mha = _layer(batch=batch, num_heads=64.0, num_kv_heads=64.0, hidden_size=8192.0)
    for op in ("score", "context"):
        # without sharing, a GQA model's decode attention costs what the same model with a KV head per query head does
        np.testing.assert_allclose(_price(gqa, per_head)[op].time_s, _price(mha, sharing)[op].time_s, rtol=1e-12)
        assert np.all(_price(gqa, sharing)[op].time_s < _price(gqa, per_head)[op].time_s)
    # prefill attention does not stream the cache: the flag leaves it alone
    prefill = _layer(batch=1.0, query_tokens=512.0, context_tokens=512.0, num_kv_heads=8.0, prefill=True)
    assert float(_price(prefill, per_head)["score"].time_s) == float(_price(prefill, sharing)["score"].time_s)


def test_tensorrt_llm_0_6_preset_is_today_s_stack_without_gqa_sharing() -> None:
    today = CATALOG.get("stacks", "tensorrt-llm")
    v06 = CATALOG.get("stacks", "tensorrt-llm-0.6")
    assert today.decode_attention_shares_kv_heads and not v06.decode_attention_shares_kv_heads
    # v0.6.1 also runs SwiGLU as a kernel of its own and its attention plugin in fp16 beside fp8 GEMMs
    assert "ffn_act" in today.fused_ops and "ffn_act" not in v06.fused_ops
    assert today.attention_dtype is None and v06.attention_dtype == "fp16"
    # and its fp8 GEMMs are the pre-DeepGEMM CUTLASS 3.6 kernel's
    assert today.gemm_fit_for("fp8") == "deepgemm" and v06.gemm_fit_for("fp8") == "cutlass-3.6"
    assert {k: v for k, v in v06.gemm_fits.items() if k != "fp8"} == {
        k: v for k, v in today.gemm_fits.items() if k != "fp8"
    }
    # and its engines were built without --use_fused_mlp: gate and up are two GEMMs
    assert today.fused_gate_up_gemm and not v06.fused_gate_up_gemm
    for differing in ("decode_attention_shares_kv_heads", "fused_ops", "attention_dtype", "gemm_fits"):
        assert differing in v06.field_sources
    assert "fused_gate_up_gemm" in v06.field_sources
    assert _described_as(
        v06,
        today,
        fused_ops=today.fused_ops,
        attention_dtype=None,
        gemm_fits=today.gemm_fits,
        fused_gate_up_gemm=True,
    ) == dataclasses.replace(today, decode_attention_shares_kv_heads=False)


def test_unfused_gate_up_is_two_gemms_of_the_same_work() -> None:
    """A gated FFN built without horizontal fusion: ffn_up is two [h, ffn] GEMMs, the same FLOP and bytes, two
    launches; a GELU FFN has one up projection either way. Exact."""
    fused, split = _layer(), _layer(fused_gate_up=False)
    assert fused["ffn_up"].gemms == ((8.0, 2 * 11008.0, 4096.0),) and fused["ffn_up"].kernels == 1.0
    assert split["ffn_up"].gemms == ((8.0, 11008.0, 4096.0), (8.0, 11008.0, 4096.0)) and split["ffn_up"].kernels == 2.0
    assert (split["ffn_up"].flop, split["ffn_up"].bytes_moved) == (fused["ffn_up"].flop, fused["ffn_up"].bytes_moved)
    gelu = _layer(gated_ffn=False, fused_gate_up=False)["ffn_up"]
    assert gelu.gemms == ((8.0, 11008.0, 4096.0),) and gelu.kernels == 1.0


@pytest.mark.parametrize("stack", ["tensorrt-llm-0.6", "tensorrt-llm-0.9"])
def test_tensorrt_llm_releases_without_fused_mlp_price_gate_and_up_as_two_gemms(stack: str) -> None:
    """The TensorRT-LLM v0.5-v0.9 tables' engines were built without --use_fused_mlp: the engine's prefill and decode
    price ffn_up as two fitted GEMMs of [h, ffn] (the stack's field), other stacks as one of [h, 2 ffn]."""
    r = resolve(
        InferenceInputs.model_validate(
            {"model": "llama2-7b", "system": "gpu_only", "accelerator": "h100-sxm", "memory": None, "batch_size": 8,
             "weight_dtype": "fp8", "activation_dtype": "fp8", "kv_cache_dtype": "fp8", "software_stack": stack}
        ),
        CATALOG,
    )  # fmt: skip
    inputs = engine_inputs(r)
    device = inputs["device"]
    assert device.gemm is not None and not device.stack.fused_gate_up_gemm
    decode_up = run_inference(**inputs).decode_ops["ffn_up"]
    one = device.gemm_time_s(8.0, 11008.0, 4096.0, b_bytes=1.0).time_s
    assert float(decode_up.time_s) == pytest.approx(2.0 * float(one), rel=1e-12)
    fused = dataclasses.replace(r, software_stack=dataclasses.replace(device.stack, fused_gate_up_gemm=True))
    fused_up = run_inference(**engine_inputs(fused)).decode_ops["ffn_up"]
    both = device.gemm_time_s(8.0, 2 * 11008.0, 4096.0, b_bytes=1.0).time_s
    assert float(fused_up.time_s) == pytest.approx(float(both), rel=1e-12)


def _described_as(stack, base, **fields):
    """`stack` with `base`'s id, name and citations and `fields` replaced: equal to `base` where only `fields`
    differ."""
    described = dict(id=base.id, name=base.name, source=base.source, notes=base.notes, field_sources=base.field_sources)
    return dataclasses.replace(stack, **described, **fields)


def test_tensorrt_llm_fp8_per_tensor_preset_is_today_s_stack_with_cutlass_gemms_and_fp16_fmha() -> None:
    """A per-tensor fp8 checkpoint under TensorRT engines: the pre-DeepGEMM fp8 GEMMs (DeepGEMM is block-scaled
    only) and the fused context FMHA in fp16; every other field today's stack's."""
    today = CATALOG.get("stacks", "tensorrt-llm")
    per_tensor = CATALOG.get("stacks", "tensorrt-llm-fp8-per-tensor")
    assert per_tensor.gemm_fit_for("fp8") == "cutlass-3.6" and per_tensor.attention_dtype == "fp16"
    for differing in ("gemm_fits", "attention_dtype", "prefill_attention_kernel"):
        assert differing in per_tensor.field_sources
    assert _described_as(per_tensor, today, gemm_fits=today.gemm_fits, attention_dtype=None) == today


def test_fp8_prefill_attention_without_an_fp8_table_runs_the_fused_fp16_kernel_at_the_fp16_peak() -> None:
    """No part has an fp8 attention table: a stack naming a fused kernel (today's TensorRT-LLM, the per-tensor
    preset) prices fp8 prefill attention on that kernel's fp16 fit at the fp16 peak, softmax inside it, never as
    score, softmax and context apart; only a stack that runs attention unfused (eager PyTorch) prices them apart."""
    per_tensor = _device("h100-sxm", "fp8", "tensorrt-llm-fp8-per-tensor")
    today = _device("h100-sxm", "fp8", "tensorrt-llm")
    eager = _device("h100-sxm", "fp8", "pytorch-eager")
    assert per_tensor.gemm_fit == "h800-sxm.fp8.cutlass-3.6.gemm"
    for stack in (per_tensor, today):
        assert stack.prefill_attention_fit == "h100-sxm.fp16.flash-attention-3.attention_fwd"
        model = stack.device.prefill_attention
        assert model is not None and model.peak_flops_per_s == CATALOG.get("accelerators", "h100-sxm").peak_for("fp16")
    assert eager.prefill_attention_fit is None
    prefill = _layer(batch=1.0, query_tokens=4096.0, context_tokens=4096.0, num_kv_heads=8.0, prefill=True)
    fused, apart = _price(prefill, per_tensor.device), _price(prefill, eager.device)
    assert float(fused["softmax"].time_s) == 0.0 and float(apart["softmax"].time_s) > 0.0
    whole = per_tensor.device.prefill_attention_time_s(1.0, 32.0, 4096.0, 4096.0, 128.0, causal=True)
    assert whole is not None
    assert float(fused["score"].time_s) + float(fused["context"].time_s) == pytest.approx(float(whole.time_s))


@pytest.mark.parametrize(
    ("acc", "fit"),
    [
        ("h100-sxm", "h100-sxm.fp16.flash-attention-1.attention_fwd_bwd"),
        ("a100-80gb", "a100-80gb.fp16.flash-attention-1.attention_fwd_bwd"),
        ("h200-sxm", "h100-sxm.fp16.flash-attention-1.attention_fwd_bwd"),  # borrowed from H100
        ("h100-sxm-96gb-hbm2e", "h100-sxm.fp16.flash-attention-1.attention_fwd_bwd"),
    ],
)
def test_flash_attention_1_is_priced_from_its_forward_backward_table(acc: str, fit: str) -> None:
    """Only a forward + backward table exists for FlashAttention v1: it prices the forward at the pair's rate and
    the backward as 2.5x that (no separate table)."""
    chosen = _device(acc, "bf16", "pytorch-fsdp-flash-attn-1")
    assert chosen.prefill_attention_fit == fit
    assert chosen.device.attention_fwd_bwd is None
    shape = (8.0, 16.0, 2048.0, 2048.0, 128.0)
    v1 = chosen.device.prefill_attention_time_s(*shape, causal=True)
    v2 = _device(acc, "bf16", "pytorch-fsdp").device.prefill_attention_time_s(*shape, causal=True)
    assert v1 is not None and v2 is not None and v1.time_s > 1.5 * v2.time_s  # v1 runs at about half v2's rate


def test_the_grand_teton_h100_borrows_the_h100_fits_with_its_own_bandwidth() -> None:
    chosen = _device("h100-sxm-96gb-hbm2e", "bf16", "pytorch-fsdp")
    assert chosen.gemm_fit == "h100-sxm.fp16.vidur-pytorch.gemm"
    assert chosen.device.gemm is not None and chosen.device.gemm.memory_bandwidth_bytes_per_s == 2.4e12


def test_a_sustained_clock_scales_compute_peaks_and_kernel_models_only() -> None:
    """`at_clock_fraction` scales the matrix and vector peaks and every kernel model's peak (fitted fractions
    kept); bandwidth, capacity and launch costs stay; 1.0 is the device itself."""
    device = _device("h100-sxm", "bf16", "pytorch-fsdp-flash-attn-1").device
    assert device.at_clock_fraction(1.0) is device
    slow = device.at_clock_fraction(0.5)
    assert slow.matrix_flops_per_s == 0.5 * device.matrix_flops_per_s
    assert slow.vector_flops_per_s == 0.5 * device.vector_flops_per_s
    assert slow.memory_bandwidth_bytes_per_s == device.memory_bandwidth_bytes_per_s
    assert slow.kernel_overhead_s == device.kernel_overhead_s
    assert device.gemm is not None and slow.gemm is not None
    assert slow.gemm.peak_flops_per_s == 0.5 * device.gemm.peak_flops_per_s
    assert slow.gemm.compute_efficiency == device.gemm.compute_efficiency
    assert device.prefill_attention is not None and slow.prefill_attention is not None
    assert slow.prefill_attention.peak_flops_per_s == 0.5 * device.prefill_attention.peak_flops_per_s
    # a large compute-bound GEMM takes twice as long at half the clock
    big = (8192.0, 8192.0, 8192.0)
    assert slow.gemm_time_s(*big).time_s == pytest.approx(2.0 * device.gemm_time_s(*big).time_s, rel=0.02)


def test_gh100_parts_are_priced_at_the_rated_clock_under_a_sustained_load() -> None:
    """GH100 kernel fits were timed at the 1980 MHz maximum boost clock; the datasheet peak is rated at
    989.4e12 / (132 SMs x 4096 FLOP per clock) = 1830 MHz; the A100's two clocks coincide (1410 MHz)."""
    assert abs(989.4e12 / (132 * 4096) - 1830e6) < 1e6
    assert abs(312e12 / (108 * 2048) - 1410e6) < 1e6
    for acc in ("h100-sxm", "h800-sxm", "h200-sxm", "h100-sxm-96gb-hbm2e"):
        assert CATALOG.get("accelerators", acc).sustained_clock_fraction == pytest.approx(1830 / 1980, abs=1e-4)
    assert CATALOG.get("accelerators", "a100-80gb").sustained_clock_fraction == 1.0


def test_the_grand_teton_peaks_follow_the_datasheet_clock_power_law() -> None:
    """The same GH100 is rated 989.45 TFLOP/s dense BF16 at 700 W (SXM) and 835.5 at 400 W (NVL): clock ~
    power^alpha through both; at 500 W every peak of the part is the SXM's x 0.9033."""
    sxm, nvl = 1978.9 / 2, 1671.0 / 2
    alpha = np.log(sxm / nvl) / np.log(700.0 / 400.0)
    ratio = nvl * (500.0 / 400.0) ** alpha / sxm
    assert ratio == pytest.approx(0.9033, abs=1e-4)
    part, full = CATALOG.get("accelerators", "h100-sxm-96gb-hbm2e"), CATALOG.get("accelerators", "h100-sxm")
    assert part.power_w == 500.0
    for dtype, peak in full.peak_flops_per_s.items():
        assert part.peak_flops_per_s[dtype] == pytest.approx(ratio * peak, rel=2e-3)
    assert part.vector_flops_per_s == pytest.approx(ratio * full.vector_flops_per_s, rel=2e-3)


def test_a_training_cluster_runs_its_gpus_at_the_sustained_clock() -> None:
    """ClusterArrays.from_spec (every training cluster) prices a step as a sustained load: the GH100's compute at
    the rated clock, the kernel models' too; memory bandwidth as timed."""
    from dse.engines.training import ClusterArrays
    from dse.specs.network import ClusterSpec

    acc = CATALOG.get("accelerators", "h100-sxm")
    spec = ClusterSpec(
        nodes=1,
        gpus_per_node=8,
        accelerator=acc,
        intra_node_link=CATALOG.get("interconnects", "nvlink4"),
        inter_node_link=CATALOG.get("interconnects", "ib-ndr"),
        inter_node_links_per_node=8,
    )
    device = _device("h100-sxm", "bf16", "pytorch-fsdp").device
    cluster = ClusterArrays.from_spec(spec, device=device, fp8_gemm_device=device)
    fraction = acc.sustained_clock_fraction
    assert cluster.device.matrix_flops_per_s == fraction * device.matrix_flops_per_s
    assert cluster.device.memory_bandwidth_bytes_per_s == device.memory_bandwidth_bytes_per_s
    assert cluster.device.gemm is not None and device.gemm is not None
    assert cluster.device.gemm.peak_flops_per_s == fraction * device.gemm.peak_flops_per_s
    assert cluster.fp8_gemm_device is not None
    assert cluster.fp8_gemm_device.matrix_flops_per_s == fraction * device.matrix_flops_per_s
    assert ClusterArrays.from_spec(spec).device.matrix_flops_per_s == fraction * acc.peak_for("bf16")
    assert cluster.sustained_clock_fraction == fraction  # MFU divides it back out: against the datasheet peak


#: Maximum achievable matmul throughput, bf16 (FLOP/s), as measured by mamf-finder.py (torch.matmul on random
#: inputs, the mean of 100 iterations after 50 warm-ups, the best of a brute-force search over shapes):
#: stas00/ml-engineering compute/accelerator/README.md @ 744d01e18b79512572f64a6bbd8b5f4a725203a7, "Maximum
#: Achievable Matmul FLOPS comparison table" (A100 SXM 271.2 TFLOP/s at 1024x10240x5120, torch 2.6.0+cu126;
#: H100 SXM 794.5 at 2048x2048x13312, torch 2.7.0+cu126).
MAMF_BF16_FLOPS_PER_S = {"a100-80gb": 271.2e12, "h100-sxm": 794.5e12}
TRAINING_STACKS = ("megatron-core-te", "megatron-lm-2023", "pytorch-fsdp", "pytorch-fsdp-flash-attn-1")


@pytest.mark.parametrize("acc", sorted(MAMF_BF16_FLOPS_PER_S))
@pytest.mark.parametrize("stack", TRAINING_STACKS)
def test_training_gemms_stay_below_the_maximum_achievable_matmul_rate(acc: str, stack: str) -> None:
    """No GEMM a training step prices (at the sustained clock) beats the fastest matmul the part was measured
    to sustain at any shape (issue #13: an MFU that looks too good is not the GEMM price: the A100 fits reach
    ~85% of that ceiling)."""
    spec = CATALOG.get("accelerators", acc)
    device = _device(acc, "bf16", stack).device.at_clock_fraction(spec.sustained_clock_fraction)
    sizes = np.array([1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0])
    m, n, k = np.meshgrid(sizes, sizes, sizes, indexing="ij")
    rate = 2.0 * m * n * k / np.asarray(device.gemm_time_s(m, n, k).time_s)
    ceiling = MAMF_BF16_FLOPS_PER_S[acc]
    assert rate.max() <= ceiling
    assert 2.0 * 1024 * 10240 * 5120 / float(device.gemm_time_s(1024.0, 10240.0, 5120.0).time_s) <= ceiling
    assert rate.max() >= 0.75 * ceiling  # the guard bites: large GEMMs run within sight of the ceiling


def test_vllm_and_sglang_stacks_launch_rope_and_the_cache_write_per_layer_for_rotary_models_only() -> None:
    """The per-layer rotary embedding and KV-cache write kernels (vLLM's rotary_embedding and reshape_and_cache):
    each stack that runs them cites it; a learned-position model (OPT) gets the write and no rope; each kernel
    costs the stack's launch beyond its traffic."""
    from dse.engines.inference import model_shape, rope_and_cache_write

    separate = {s for s in STACKS if CATALOG.get("stacks", s).rope_and_cache_write_kernels}
    assert separate == {"vllm-0.5", "vllm-0.6.0", "vllm-cuda-graphs", "sglang-0.3.0", "sarathi-serve"}
    for stack in separate:
        assert "rope_and_cache_write_kernels" in CATALOG.get("stacks", stack).field_sources
    device = _device("h100-sxm", "fp16", "vllm-0.6.0").device
    assert rope_and_cache_write(device) and not rope_and_cache_write(_device("h100-sxm", "fp16", "tensorrt-llm").device)
    assert model_shape(CATALOG.get("llms", "llama3.1-70b")).rotary
    assert not model_shape(CATALOG.get("llms", "gpt3-13b")).rotary
    ops = decoder_layer_ops(
        batch=128.0, query_tokens=1.0, context_tokens=1024.0, hidden_size=8192.0, num_heads=64.0,
        num_kv_heads=8.0, ffn_hidden_size=28672.0, gated_ffn=True, layernorm=False, tensor_parallel=4.0,
        weight_bytes=2.0, activation_bytes=2.0, kv_cache_bytes=2.0, rope=True, kv_cache_write=True,
    )  # fmt: skip
    priced = price_layer_ops(ops, device, tensor_parallel=4.0, link_bandwidth_bytes_per_s=450e9, link_latency_s=0.0)
    stack = device.stack
    assert stack is not None
    for name in ("rope", "kv_cache_write"):
        memory_s = ops[name].bytes_moved / (device.memory_bandwidth_bytes_per_s * device.memory_efficiency)
        assert float(priced[name].time_s) == pytest.approx(memory_s + stack.elementwise_launch_overhead_s, rel=1e-12)
