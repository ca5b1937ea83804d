"""Serving cost: the time of N denoising steps with classifier-free guidance plus text encoder and VAE
decoder, priced op by op on one `Device` under its software stack, for static, dynamic and APTP
(per-code batch) serving."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from dse.engines.device import Device
from dse.engines.kernels import AttentionKernelModel, GemmKernelModel
from dse.engines.pruning.counter import LayerCounts, count_layers, latent_side
from dse.engines.pruning.layers import (
    CATEGORY_NAMES,
    CONV,
    CROSS_ATTENTION,
    ELEMENTWISE,
    EMBEDDING,
    GROUP_NORM_PASSES,
    LINEAR,
    NORM,
    SELF_ATTENTION,
    FloatArray,
    IntArray,
    LayerTable,
    text_encoder_layer_table,
    unet_layer_table,
    vae_decoder_layer_table,
)
from dse.specs.common import Num
from dse.specs.diffusion import DiffusionPipelineSpec
from dse.specs.hardware import AcceleratorSpec

M = TypeVar("M", GemmKernelModel, AttentionKernelModel)


def with_trailing_axes(device: Device, count: int) -> Device:
    """The same device with `count` unit axes appended to every rate, its kernel models' included, to
    broadcast against (..., codes, rows) arrays (a sweep may have made any rate an array)."""

    def expand(x: Num) -> FloatArray:
        out: FloatArray = np.asarray(x, dtype=np.float64).reshape(np.shape(x) + (1,) * count)
        return out

    def expand_model(model: M | None) -> M | None:
        if model is None:
            return None
        return dataclasses.replace(
            model,
            peak_flops_per_s=expand(model.peak_flops_per_s),  # type: ignore[arg-type]
            memory_bandwidth_bytes_per_s=expand(model.memory_bandwidth_bytes_per_s),  # type: ignore[arg-type]
        )

    return dataclasses.replace(
        device.map_rates(expand),
        gemm=expand_model(device.gemm),
        prefill_attention=expand_model(device.prefill_attention),
        decode_attention=expand_model(device.decode_attention),
    )


@cache
def _rows(table: LayerTable, *categories: int) -> IntArray:
    """Indices of the rows of the given categories (once per table)."""
    return np.flatnonzero(_of_categories(table.category, categories))


def _of_categories(category: IntArray, categories: tuple[int, ...]) -> NDArray[np.bool_]:
    """category in categories, element-wise: a lookup in a small table (np.isin costs far more per call)."""
    wanted = np.zeros(len(CATEGORY_NAMES) + 1, dtype=bool)  # the last entry for -1 (no row)
    wanted[list(categories)] = True
    out: NDArray[np.bool_] = wanted[category]
    return out


def _take(x: FloatArray, rows: IntArray) -> FloatArray:
    return np.take(np.asarray(x, dtype=np.float64), rows, axis=-1)


@dataclass(frozen=True, eq=False)
class _RowConstants:
    """What `network_time_s` reads from a table alone, made once per table (its calls differ in counts only)."""

    weights: IntArray
    taps: FloatArray
    input_token_ratio: FloatArray
    conv: NDArray[np.bool_]
    conv_with_bias: NDArray[np.bool_]
    attention: IntArray
    head_dim: FloatArray
    causal: NDArray[np.bool_]
    any_causal: bool
    all_causal: bool


@cache
def _row_constants(table: LayerTable) -> _RowConstants:
    weights = _rows(table, CONV, LINEAR)
    conv = table.category[weights] == CONV
    attention = _rows(table, SELF_ATTENTION, CROSS_ATTENTION)
    causal = table.causal[attention] > 0
    return _RowConstants(
        weights=weights,
        taps=table.kernel_area[weights],
        input_token_ratio=table.input_token_ratio[weights],
        conv=conv,
        conv_with_bias=conv & (table.bias[weights] > 0),
        attention=attention,
        head_dim=table.fan_in[attention] / np.maximum(table.heads[attention], 1.0),
        causal=causal,
        any_causal=bool(np.any(causal)),
        all_causal=bool(causal.size) and bool(np.all(causal)),
    )


@cache
def _padded_head_dim(table: LayerTable, kernel: str) -> FloatArray:
    """`fused_head_dim` of the table's attention rows (once per table and kernel)."""
    return fused_head_dim(_row_constants(table).head_dim, kernel)


@dataclass(frozen=True, eq=False)
class _MemoryRows:
    """The memory-bound rows priced as passes, and which of them are group norms or copies back to the image."""

    rows: IntArray
    group_norms: NDArray[np.bool_]
    to_image: NDArray[np.bool_]


@cache
def _memory_rows(table: LayerTable, views: tuple[str, ...], fused: bool, epilogue: bool) -> _MemoryRows:
    """Norms, embeddings and element-wise rows, less the permutes that are views (`views`), less the element-wise
    ops a fusing stack folds into the kernel before them (`fused`, `epilogue`: see `_absorbed`); once per table
    and stack."""
    rows = _rows(table, NORM, EMBEDDING, ELEMENTWISE)
    if views:
        rows = rows[~_layout_copies(table, *views)[rows]]
    if fused:
        rows = rows[~_absorbed(table, epilogue=epilogue)[rows]]
    return _MemoryRows(
        rows=rows,
        group_norms=(table.category[rows] == NORM) & (table.kernel_area[rows] == GROUP_NORM_PASSES),
        to_image=_layout_copies(table, ".to_image")[rows],
    )


@cache
def _absorbed(table: LayerTable, *, epilogue: bool) -> NDArray[np.bool_]:
    """Rows a fusing compiler folds into the kernel before them (forward order): an element-wise op
    right after a norm or another element-wise op joins that kernel's pass (Inductor's pointwise
    fusion); right after a GEMM only when the stack fuses into GEMM epilogues (`epilogue`)."""
    cat = table.category
    before = np.concatenate([[-1], cat[:-1]])
    after_pass = _of_categories(before, (NORM, ELEMENTWISE))
    after_gemm = _of_categories(before, (CONV, LINEAR, SELF_ATTENTION, CROSS_ATTENTION))
    out: NDArray[np.bool_] = (cat == ELEMENTWISE) & (after_pass | (epilogue & after_gemm))
    return out


@cache
def _layout_copies(table: LayerTable, *ends: str) -> NDArray[np.bool_]:
    """The transformer blocks' permute copies whose row names end so: ".to_tokens" (B, C, H, W) -> (B, HW, C),
    ".to_image" back (copies in NCHW)."""
    out: NDArray[np.bool_] = np.array([name.endswith(ends) for name in table.row_names])
    return out


def network_time_s(
    table: LayerTable,
    counts: LayerCounts,
    *,
    batch: Num,
    bytes_per_element: Num,
    device: Device,
    channels_last: bool = False,
    conv_device: Device | None = None,
    attention_device: Device | None = None,
    rows_axis_added: bool = False,
) -> FloatArray:
    """Time of one forward pass at `batch` samples, op by op on `device` (its stack decides the kernels).

    * convolutions and linears: one GEMM each, M = batch x output positions, N = output channels,
      K = input channels x kernel taps (`Device.gemm_time_s`: the stack's fitted GEMM model, so small
      spatial sizes and skinny shapes lose efficiency; a convolution is an implicit GEMM that reads
      its input once);
    * attention: one fused kernel (`Device.prefill_attention_time_s`) when the stack has a fused
      kernel with a fit; a stack with unfused attention runs Q K^T and P V as batched GEMMs with a
      softmax pass over the scores between them; with no stack, the roofline of the two matmuls;
    * norms, activations, residual adds, concatenations, up-sampling copies: memory-bound passes
      (`Device.elementwise_time_s`), each its own kernel with the stack's launch cost; a stack with
      `pointwise_fusion` folds an element-wise op into the norm or element-wise kernel before it, and
      into a GEMM's epilogue when it fuses activations there ("ffn_act"), so a chain costs one pass;
    * memory format: in PyTorch's default NCHW layout, cuDNN transposes each convolution's input to NHWC
      and its output back (two memory-bound kernels of two passes each; MosaicML Composer, "Channels Last"
      method card), and the transformer blocks' permutes are copies; `channels_last` activations, or a
      stack that lays out NHWC itself (`native_nhwc`, TensorRT), need neither, except eager PyTorch's copy back to
      the image, which diffusers makes contiguous (NCHW) and proj_out copies to channels-last again;
    * a convolution's bias under eager PyTorch: cuDNN runs without it and an in-place add follows (one more
      memory-bound kernel); a fusing stack folds it away.

    * math modes: `conv_device` prices the convolutions and `attention_device` the attention matmuls when
      their library computes in another mode than the GEMMs (fp32 work in PyTorch on Ampere: cuDNN may use
      TF32 while matmuls stay fp32, see `fp32_math_devices`); None: `device`.

    A row with batch 0 costs nothing. batch, bytes_per_element and the device's rates broadcast
    against the counts without their last (rows) axis (`rows_axis_added`: the device given is already
    `with_trailing_axes(device, 1)`, made once for several calls).
    """
    n = np.asarray(batch, dtype=np.float64)[..., None]
    width = np.asarray(bytes_per_element, dtype=np.float64)[..., None]
    dev = device if rows_axis_added else with_trailing_axes(device, 1)  # the rows axis
    stack = device.stack

    rc = _row_constants(table)
    weights = rc.weights
    m = n * _take(counts.tokens, weights)
    w_in = _take(counts.width_in, weights)
    taps = rc.taps
    # a convolution reads its input tensor once (positions x input_token_ratio), not once per tap
    a_elements = m * rc.input_token_ratio * w_in
    w_out = _take(counts.width_out, weights)
    gemm_s = dev.gemm_time_s(m, w_out, taps * w_in, a_elements=a_elements).time_s
    conv = rc.conv
    if conv_device is not None:
        conv_s = with_trailing_axes(conv_device, 1).gemm_time_s(m, w_out, taps * w_in, a_elements=a_elements).time_s
        gemm_s = np.where(conv, conv_s, gemm_s)
    live = m > 0
    total = np.sum(np.where(live, gemm_s, 0.0), axis=-1)
    nhwc = channels_last or (stack is not None and stack.native_nhwc)
    # one pass over each output (read and written): cuDNN's transpose back to NCHW, eager PyTorch's bias add
    output_pass: FloatArray | float | None = None
    if not nhwc and stack is not None:  # cuDNN's transposes: a library's, so not on the bare roofline
        to_nhwc = dev.elementwise_time_s(0.0, 2.0 * a_elements * width).time_s
        output_pass = dev.elementwise_time_s(0.0, 2.0 * m * w_out * width).time_s
        total = total + np.sum(np.where(conv & live, to_nhwc + output_pass, 0.0), axis=-1)
    if stack is not None and not stack.pointwise_fusion and not stack.native_nhwc:
        # eager PyTorch runs cuDNN's convolution without its bias and adds the bias in place afterwards: one more
        # kernel reading and writing the output (pytorch/pytorch aten/src/ATen/native/Convolution.cpp, _convolution,
        # case ConvBackend::Cudnn: output = at::cudnn_convolution(...); if (bias.defined()) output.add_(bias));
        # a fusing compiler folds the add into the next pointwise kernel, TensorRT into the convolution
        if output_pass is None:
            output_pass = dev.elementwise_time_s(0.0, 2.0 * m * w_out * width).time_s
        total = total + np.sum(np.where(rc.conv_with_bias & live, output_pass, 0.0), axis=-1)

    attention = rc.attention
    q = _take(counts.tokens, attention)
    kv = _take(counts.kv_tokens, attention)
    w_att = _take(counts.width_in, attention)
    head_dim = rc.head_dim
    heads = w_att / head_dim
    causal = rc.causal
    fused = None if stack is None or stack.prefill_attention_kernel == "unfused" else device.prefill_attention
    padded_head_dim = _padded_head_dim(table, "flash-attention-2" if stack is None else stack.prefill_attention_kernel)
    att_s: FloatArray
    if attention_device is not None:  # the kernel of another math mode: the roofline of its two matmuls
        flop = 2.0 * _take(counts.macs, attention) * n
        att_dev = with_trailing_axes(attention_device, 1)
        att_s = np.asarray(att_dev.op_time_s(flop, n * _take(counts.activation_elements, attention) * width).time_s)
    elif fused is not None:
        plain = None if rc.all_causal else dev.prefill_attention_time_s(n, heads, q, kv, padded_head_dim, causal=False)
        masked = dev.prefill_attention_time_s(n, heads, q, kv, padded_head_dim, causal=True) if rc.any_causal else None
        if plain is None:  # every row causal (a text encoder)
            assert masked is not None
            att_s = np.asarray(masked.time_s, dtype=np.float64)
        else:
            att_s = np.asarray(plain.time_s, dtype=np.float64)
            if masked is not None:
                att_s = np.where(causal, masked.time_s, att_s)
    elif stack is not None:
        rows_m = n * heads * q  # (batch x heads) independent GEMMs, as many output tiles as one tall GEMM
        scores = dev.gemm_time_s(rows_m, kv, head_dim).time_s
        context = dev.gemm_time_s(rows_m, head_dim, kv).time_s
        softmax = dev.elementwise_time_s(0.0, 2.0 * rows_m * kv * width).time_s
        att_s = np.asarray(scores + softmax + context, dtype=np.float64)
    else:
        flop = 2.0 * _take(counts.macs, attention) * n
        att_s = np.asarray(dev.op_time_s(flop, n * _take(counts.activation_elements, attention) * width).time_s)
    total = total + np.sum(np.where(n * q > 0, att_s, 0.0), axis=-1)

    eager_channels_last = channels_last and stack is not None and not stack.pointwise_fusion and not stack.native_nhwc
    views: tuple[str, ...] = ()
    if nhwc:
        # channels-last: proj_in's output permuted to tokens is a view. Back to the image, eager PyTorch still copies:
        # diffusers Transformer2DModel.forward runs .reshape(batch, height, width, inner_dim).permute(0, 3, 1,
        # 2).contiguous() before proj_out (src/diffusers/models/transformer_2d.py), a copy to NCHW (a channels-last
        # tensor is not contiguous), and the 1x1 proj_out, whose weight is channels-last, copies it back (cuDNN
        # runs channels-last when input or weight is: pytorch/pytorch aten/src/ATen/native/ConvUtils.h,
        # cudnn_conv_suggest_memory_format); a fusing compiler or TensorRT plans the layout itself.
        views = (".to_tokens",) if eager_channels_last else (".to_tokens", ".to_image")
    fusing = stack is not None and stack.pointwise_fusion
    passes = _memory_rows(table, views, fusing, fusing and stack is not None and "ffn_act" in stack.fused_ops)
    memory_rows = passes.rows
    moved = n * _take(counts.activation_elements, memory_rows) * width
    pointwise = dev.elementwise_time_s(0.0, moved).time_s
    moving = moved > 0
    total = total + np.sum(np.where(moving, pointwise, 0.0), axis=-1)
    if stack is not None:  # a group norm's kernels beyond the one elementwise_time_s launched
        extra = _group_norm_kernels(stack.pointwise_fusion) - 1.0
        group_norms = passes.group_norms
        launches = np.where(group_norms & moving, extra * stack.elementwise_launch_overhead_s, 0.0)
        total = total + np.sum(launches, axis=-1)
        if eager_channels_last:
            back = passes.to_image
            # proj_out's input copied back, as large as the .contiguous() pass: that pass's time again
            total = total + np.sum(np.where(back & moving, pointwise, 0.0), axis=-1)
            # eager PyTorch's CUDA GroupNorm is NCHW-only: it copies a channels-last input to NCHW and returns
            # NCHW, which the next (channels-last) convolution copies back: two copies of the tensor per group
            # norm (pytorch/pytorch issue #111824, 'GroupNorm & InstanceNorm does not handle channels_last
            # correctly', torch 2.1; aten/src/ATen/native/group_norm.cpp: X = input.contiguous() unless on CPU)
            tensor = moved / GROUP_NORM_PASSES
            copies = 2.0 * dev.elementwise_time_s(0.0, 2.0 * tensor).time_s
            total = total + np.sum(np.where(group_norms & moving, copies, 0.0), axis=-1)
    out: FloatArray = total
    return out


def _group_norm_kernels(pointwise_fusion: bool) -> float:
    """Kernels of one GroupNorm: eager PyTorch launches three (RowwiseMomentsCUDAKernel for the statistics,
    ComputeFusedParamsCUDAKernel for the per-channel scale and shift, then a * x + b: pytorch/pytorch
    aten/src/ATen/native/cuda/group_norm_kernel.cu, GroupNormKernelImplInternal); a fusing compiler folds the
    small middle one into its neighbours and keeps the statistics reduction and the normalization (Inductor's
    reduction and pointwise kernels; TensorRT's GroupNorm plugin, groupNormNHWCSum then groupNormNHWCScale)."""
    return 2.0 if pointwise_fusion else 3.0


def fp32_math_devices(spec: AcceleratorSpec) -> tuple[Device | None, Device | None]:
    """The devices of fp32 work's convolutions and attention matmuls under PyTorch's defaults on a part with
    TF32 tensor cores (None, None on a part without: everything runs in fp32).

    * convolutions: TF32 (`torch.backends.cudnn.allow_tf32` defaults to True, while
      `torch.backends.cuda.matmul.allow_tf32`, which linears follow, defaults to False since PyTorch 1.12:
      pytorch/pytorch docs/source/notes/cuda.rst, 'TensorFloat-32 (TF32) on Ampere (and later) devices');
    * attention: fp32 scaled_dot_product_attention runs the memory-efficient kernel (FlashAttention takes
      fp16/bf16 only), whose fp32 GEMMs on compute capability >= 8.0 use OpMultiplyAddFastF32
      (pytorch/pytorch aten/src/ATen/native/transformers/cuda/mem_eff_attention/gemm_kernel_utils.h,
      DefaultGemmType for float): 3xTF32, three TF32 tensor-core products per fp32 product (a_big*b_big +
      a_big*b_small + a_small*b_big: NVIDIA/cutlass examples/27_ampere_3xtf32_fast_accurate_tensorop_gemm),
      a third of the TF32 peak.
    """
    if "tf32" not in spec.peak_flops_per_s:
        return None, None
    tf32 = Device.from_accelerator(spec, "tf32")
    return tf32, dataclasses.replace(tf32, matrix_flops_per_s=tf32.matrix_flops_per_s / 3.0)


def fused_head_dim(head_dim: Num, kernel: str) -> FloatArray:
    """The head width a fused attention kernel computes with (it pads the head to a compiled width).

    FlashAttention-2 (and 3) pad a head up to 192 wide to a multiple of 32 (256 beyond), so SD 1.5's 40- and
    80-wide heads pay for 64 and 96 (Dao-AILab/flash-attention csrc/flash_attn/flash_api.cpp: head_size_rounded
    = round_multiple(head_size, 32)). FlashAttention v1 (PyTorch 2.0 and 2.1 SDPA) compiles 32-, 64- and
    128-wide kernels, so 40 pays for 64 and 80 for 128 (csrc/flash_attn/fmha_api.cpp @ 6d48e14a,
    run_fmha_fwd); a wider head is not v1's (SDPA's memory-efficient kernel runs it) and is priced unpadded.
    """
    d = np.asarray(head_dim, dtype=np.float64)
    if kernel == "flash-attention-1":
        out: FloatArray = np.where(d <= 32.0, 32.0, np.where(d <= 64.0, 64.0, np.where(d <= 128.0, 128.0, d)))
        return out
    out = np.where(d <= 192.0, np.ceil(d / 32.0) * 32.0, 256.0)
    return out


def _unpruned_counts(table: LayerTable, side: Num) -> LayerCounts:
    """The unpruned network's counts with an axis before the rows; kept for a scalar side (the text encoder and VAE
    of one scenario give the same counts at every evaluation)."""
    side_array = np.asarray(side, dtype=np.float64)
    if side_array.ndim == 0:
        return _unpruned_counts_at(table, float(side_array))
    return _before_rows(count_layers(table, latent_side=side_array))


@lru_cache(maxsize=64)
def _unpruned_counts_at(table: LayerTable, side: float) -> LayerCounts:
    counts = _before_rows(count_layers(table, latent_side=side))
    for f in dataclasses.fields(counts):
        getattr(counts, f.name).flags.writeable = False  # shared by every caller
    return counts


def _before_rows(counts: LayerCounts) -> LayerCounts:
    return LayerCounts(**{f.name: getattr(counts, f.name)[..., None, :] for f in dataclasses.fields(counts)})


def _joined(parts: tuple[FloatArray, ...], *, trailing: int) -> FloatArray:
    """The parts joined along their first trailing axis (of `trailing`), their leading axes broadcast."""
    lead = np.broadcast_shapes(*(np.shape(p)[:-trailing] for p in parts))
    out: FloatArray = np.concatenate(
        [np.broadcast_to(p, lead + np.shape(p)[-trailing:]) for p in parts], axis=-trailing
    )
    return out


@dataclass(frozen=True)
class ServingCost:
    """Seconds and images/s for a batch of `batch` prompts, per strategy (broadcast over inputs)."""

    static_latency_s: FloatArray
    dynamic_latency_s: FloatArray
    aptp_latency_s: FloatArray
    static_images_per_s: FloatArray
    dynamic_images_per_s: FloatArray
    aptp_images_per_s: FloatArray
    #: Parts of the APTP time: text encoder, all UNet steps, VAE decoder.
    aptp_text_encoder_s: FloatArray
    aptp_unet_s: FloatArray
    aptp_vae_s: FloatArray
    #: The unpruned pipeline at the same batch, for the latency cut.
    full_latency_s: FloatArray


def serving_cost(
    spec: DiffusionPipelineSpec,
    *,
    code_keep: Num,
    code_share: Num,
    static_keep: Num,
    image_side_px: Num,
    batch: Num,
    denoising_steps: Num,
    guidance_copies: Num,
    bytes_per_element: Num,
    device: Device,
    unet_channels_last: bool = False,
    conv_device: Device | None = None,
    attention_device: Device | None = None,
) -> ServingCost:
    """Serving a batch of prompts through text encoder, N UNet steps and VAE decoder.

    code_keep (K, num_prunable, 3), code_share (..., K) summing to 1; static_keep (..., num_prunable, 3).
    guidance_copies = 2 with classifier-free guidance (conditional + unconditional UNet and
    text-encoder passes per image), 1 without.
    * static: one pruned network for the whole batch;
    * dynamic: a per-prompt network, so every prompt runs alone (batch 1), each its code's cost;
    * APTP: the batch splits by code into sub-batches run one after another; code k is drawn with
      probability 1 - (1 - s_k)^B and then serves B s_k / that probability prompts on average
      (exact at B = 1, where APTP costs what dynamic pruning does, and B s_k for large B).
    Text encoder and VAE decoder are not pruned; they batch over the whole batch except in dynamic.
    unet_channels_last: the UNet's activations are channels-last (diffusers: unet.to(memory_format=
    torch.channels_last)); the VAE decoder keeps PyTorch's default NCHW.
    conv_device / attention_device: the math modes of the convolutions and attention matmuls of every network
    when they differ from the GEMMs' (`network_time_s`; `fp32_math_devices`).
    """
    unet_table = unet_layer_table(spec.unet, spec.text_encoder.max_position_embeddings)
    side = np.asarray(latent_side(image_side_px, spec.unet), dtype=np.float64)
    b = np.asarray(batch, dtype=np.float64)
    steps = np.asarray(denoising_steps, dtype=np.float64)
    g = np.asarray(guidance_copies, dtype=np.float64)
    share = np.asarray(code_share, dtype=np.float64)
    keep = np.asarray(code_keep, dtype=np.float64)
    n_codes = keep.shape[-3]

    # Every call below has an axis before the rows (the codes, or the pair of batches): it and the rows axis are
    # added to the device's rates once (the other math modes' devices get their rows axis in network_time_s).
    width = np.asarray(bytes_per_element, dtype=np.float64)[..., None]
    rows_device = with_trailing_axes(device, 2)
    conv_rows_device = None if conv_device is None else with_trailing_axes(conv_device, 1)
    attention_rows_device = None if attention_device is None else with_trailing_axes(attention_device, 1)

    def times(table: LayerTable, counts: LayerCounts, n: Num) -> FloatArray:
        return network_time_s(
            table,
            counts,
            batch=n,
            bytes_per_element=width,
            device=rows_device,
            channels_last=unet_channels_last and table is unet_table,
            rows_axis_added=True,
            conv_device=conv_rows_device,
            attention_device=attention_rows_device,
        )

    def two_batches(table: LayerTable, n: Num, n_alone: Num, side_: Num) -> tuple[FloatArray, FloatArray]:
        """`times` of the unpruned network at a batch and at one prompt in one call, for the small networks (the
        text encoder, the VAE decoder: their calls cost more than their arrays): the pair on an axis just before
        the rows, so that every input broadcasts as alone and each element is priced as alone (the rows still
        summed along the last axis)."""
        both = times(
            table,
            _unpruned_counts(table, side_),
            np.stack(np.broadcast_arrays(np.asarray(n, dtype=np.float64), n_alone), -1),
        )
        return both[..., 0], both[..., 1]

    text_table = text_encoder_layer_table(spec.text_encoder)
    vae_table = vae_decoder_layer_table(spec.vae_decoder)
    text_b, text_1 = two_batches(text_table, g * b, g, 0.0)
    vae_b, vae_1 = two_batches(vae_table, b, np.float64(1.0), side)

    side_k = side[..., None]  # codes on the last axis
    # Prompts of code k in a batch of B are Binomial(B, s_k): the code runs (and reads its
    # weights) only when it is drawn, with B s_k / P(drawn) prompts on average when it is.
    drawn = 1.0 - (1.0 - share) ** b[..., None]
    sub_batch = np.where(drawn > 0, b[..., None] * share / np.where(drawn > 0, drawn, 1.0), 0.0)
    # The static and the unpruned UNet at the whole batch ride in the codes' call as two more codes (the full
    # network's keep fractions are ones, counted as no keep is): one pass over the rows instead of three.
    static_networks = np.asarray(static_keep, dtype=np.float64)[..., None, :, :]
    networks = _joined((keep, static_networks, np.ones_like(static_networks)), trailing=3)
    unet_counts = count_layers(unet_table, latent_side=side_k, keep=networks)
    whole = (g * b)[..., None]
    unet_all = times(unet_table, unet_counts, _joined((g[..., None] * sub_batch, whole, whole), trailing=1))
    unet_code_sub = drawn * unet_all[..., :n_codes]
    unet_static, unet_full = unet_all[..., n_codes], unet_all[..., n_codes + 1]
    # the codes alone (one prompt each): their counts taken from the call above (every count has the codes axis
    # before the rows, of size K + 2 or 1)
    codes_counts = LayerCounts(
        **{f.name: getattr(unet_counts, f.name)[..., :n_codes, :] for f in dataclasses.fields(unet_counts)}
    )
    unet_code_1 = times(unet_table, codes_counts, g[..., None] * np.ones(n_codes))

    aptp_unet = steps * np.sum(unet_code_sub, axis=-1)
    aptp = text_b + aptp_unet + vae_b
    static = text_b + steps * unet_static + vae_b
    dynamic = b * np.sum(share * (text_1[..., None] + steps[..., None] * unet_code_1 + vae_1[..., None]), axis=-1)
    full = text_b + steps * unet_full + vae_b
    return ServingCost(
        static_latency_s=static,
        dynamic_latency_s=dynamic,
        aptp_latency_s=aptp,
        static_images_per_s=b / static,
        dynamic_images_per_s=b / dynamic,
        aptp_images_per_s=b / aptp,
        aptp_text_encoder_s=np.broadcast_to(text_b, aptp.shape).copy(),
        aptp_unet_s=aptp_unet,
        aptp_vae_s=np.broadcast_to(vae_b, aptp.shape).copy(),
        full_latency_s=full,
    )
