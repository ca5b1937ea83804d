"""Inputs of the `pruning` kind: pipeline, accelerator, codes, prompt mix and budget; the resolved
tree the engines read, and `resolve` (presets looked up, codes expanded to one keep per block)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from dse.catalog import Catalog
from dse.catalog.calibration import KernelFit, load_fits
from dse.scenarios.base import InputError, StrictModel
from dse.scenarios.presets import preset_or_inline
from dse.specs.diffusion import DiffusionPipelineSpec
from dse.specs.hardware import BYTES_PER_ELEMENT, AcceleratorSpec
from dse.specs.stacks import SoftwareStackSpec

#: The software stack of a document that names none: diffusers out of the box (eager PyTorch, every op
#: its own host-launched kernel, attention through scaled_dot_product_attention), as most published
#: Stable Diffusion timings ran.
DEFAULT_SOFTWARE_STACK = "pytorch-eager-sdpa"

KeepFraction = Annotated[float, Field(gt=0.0, le=1.0)]
KeepSpec = KeepFraction | list[KeepFraction]


class PromptCategory(StrictModel):
    name: str = Field(min_length=1)
    share: float = Field(ge=1e-9, le=1e9, description="Fraction of the prompt stream (normalised over the mix).")
    required_capacity_ratio: KeepFraction = Field(
        description="Resource ratio R a prompt of this category needs to keep its quality (1 = full UNet)."
    )


class ArchitectureCode(StrictModel):
    """Keep fractions per prunable block: one number (uniform), one per stage (resolution level:
    down_i, up_(n-1-i) and, for the deepest, mid), or one per block (down..., mid, up...)."""

    name: str = Field(min_length=1)
    channel_keep: KeepSpec = 1.0
    head_keep: KeepSpec = 1.0
    ffn_keep: KeepSpec = 1.0
    capacity_share: float | None = Field(
        None,
        ge=0.0,
        le=1e9,
        description="Share of prompts this code may take; omit on every code for even shares (APTP's OT).",
    )


class PruningInputs(StrictModel):
    pipeline: str | DiffusionPipelineSpec = Field("sd21", description="Diffusion pipeline preset id or inline spec.")
    accelerator: str | AcceleratorSpec = Field("a100-80gb", description="Accelerator preset id or inline spec.")
    dtype: Literal["fp16", "bf16", "fp32"] = "fp16"
    image_size_px: int = Field(768, ge=8, le=16384, description="Image side in pixels (square images).")
    denoising_steps: int = Field(50, ge=1, le=1000)
    classifier_free_guidance: bool = True
    batch_size: int = Field(8, ge=1, le=4096, description="Prompts served together.")
    budget_ratio: KeepFraction = Field(0.66, description="Budget on the mean resource ratio over prompts.")
    resource_basis: Literal["with_attention_matmuls", "conv_linear"] = Field(
        "with_attention_matmuls", description="MACs that define R: APTP's op counter includes the attention matmuls."
    )
    sinkhorn_epsilon: float = Field(0.01, ge=1e-4, le=10.0, description="Entropic regularisation of the transport.")
    prompt_mix: list[PromptCategory] = Field(min_length=1, max_length=64)
    codes: list[ArchitectureCode] = Field(min_length=1, max_length=64)
    figure_batch_sizes: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [1, 2, 4, 8, 16, 32, 64], min_length=1, max_length=32
    )
    unet_channels_last: bool = Field(
        False,
        title="UNet channels-last",
        description="UNet activations in channels-last memory format (unet.to(memory_format=torch.channels_last)): "
        "no NCHW <-> NHWC transposes around its convolutions; false = PyTorch's default NCHW.",
    )
    software_stack: str | SoftwareStackSpec | None = Field(
        DEFAULT_SOFTWARE_STACK,
        title="Software stack",
        description="Software stack preset (stacks/) or an inline spec: GEMM and attention kernel fits, launch cost, "
        "fusion of element-wise ops; null = the roofline with the accelerator's single efficiencies.",
    )


@dataclass(frozen=True)
class PruningResolved:
    pipeline: DiffusionPipelineSpec
    accelerator: AcceleratorSpec
    #: The dtype the pipeline runs in (the accelerator's peak and the element width follow it).
    dtype: str
    #: The accelerator's peak for `dtype` (a sweep may replace it).
    peak_flops_per_s: float
    bytes_per_element: float
    image_size_px: float
    denoising_steps: float
    guidance_copies: float
    batch_size: float
    budget_ratio: float
    sinkhorn_epsilon: float
    include_attention_matmuls: bool
    category_names: tuple[str, ...]
    code_names: tuple[str, ...]
    #: (C,) normalised shares and (C,) required ratios of the prompt categories.
    category_share: np.ndarray[Any, Any]
    category_capacity: np.ndarray[Any, Any]
    #: (K, num_prunable, 3) keep fractions (channels, heads, FFN) and (K,) capacity shares.
    code_keep: np.ndarray[Any, Any]
    code_capacity: np.ndarray[Any, Any]
    figure_batch_sizes: tuple[int, ...]
    #: The UNet's activations are channels-last (no layout transposes around its convolutions).
    unet_channels_last: bool = False
    #: The stack the kernels run under (None: the roofline) and the kernel fits of the catalog.
    software_stack: SoftwareStackSpec | None = None
    kernel_fits: dict[str, KernelFit] | None = None


def _expand_keep(value: KeepSpec, n_levels: int, n_prunable: int, field: str) -> np.ndarray[Any, Any]:
    """One keep fraction per prunable block (down_0.., mid, up_0..) from a scalar, per stage or per block."""
    if isinstance(value, (int, float)):  # the usual one fraction for every block, without array round trips
        return np.full(n_prunable, float(value))
    values = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if values.size == 1:
        return np.full(n_prunable, values[0])
    if values.size == n_prunable:
        return values
    if values.size == n_levels:
        stage = [*range(n_levels), n_levels - 1, *range(n_levels - 1, -1, -1)]
        return values[stage]
    raise InputError(
        field, f"give 1 value, {n_levels} (one per stage) or {n_prunable} (one per block); got {values.size}"
    )


def _check_pipeline(pipeline: DiffusionPipelineSpec, image_size_px: int) -> None:
    unet = pipeline.unet
    n_levels = len(unet.block_out_channels)
    if not (len(unet.down_block_types) == len(unet.up_block_types) == len(unet.num_attention_heads) == n_levels):
        raise InputError("pipeline.unet", "down/up block types and head counts need one entry per level")
    granule = unet.vae_scale_factor * 2 ** (n_levels - 1)
    if image_size_px % granule:
        raise InputError("image_size_px", f"must be a multiple of {granule} px (VAE factor x UNet down-sampling)")
    for i, heads in enumerate(unet.num_attention_heads):
        if unet.block_out_channels[i] % heads:
            raise InputError(f"pipeline.unet.num_attention_heads[{i}]", "must divide the block's channels")


def _codes(codes: list[ArchitectureCode], n_levels: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(K, num_prunable, 3) keep fractions and (K,) normalised capacity shares."""
    n_prunable = 2 * n_levels + 1
    keep = np.empty((len(codes), n_prunable, 3))
    capacities = []
    for k, code in enumerate(codes):
        keep[k, :, 0] = _expand_keep(code.channel_keep, n_levels, n_prunable, f"codes[{k}].channel_keep")
        keep[k, :, 1] = _expand_keep(code.head_keep, n_levels, n_prunable, f"codes[{k}].head_keep")
        keep[k, :, 2] = _expand_keep(code.ffn_keep, n_levels, n_prunable, f"codes[{k}].ffn_keep")
        capacities.append(code.capacity_share)
    names = [c.name for c in codes]
    if len(set(names)) != len(names):
        raise InputError("codes", "code names must be unique")
    if all(c is None for c in capacities):
        capacity = np.full(len(capacities), 1.0 / len(capacities))
    elif any(c is None for c in capacities):
        raise InputError("codes", "set capacity_share on every code or on none")
    else:
        capacity = np.asarray(capacities, dtype=np.float64)
        if capacity.sum() <= 0:
            raise InputError("codes", "capacity shares must not all be zero")
        capacity = capacity / capacity.sum()
    return keep, capacity


def resolve(inputs: PruningInputs, catalog: Catalog) -> PruningResolved:
    """Presets looked up, cross-field rules checked (InputError naming the field), codes expanded."""
    pipeline: DiffusionPipelineSpec = preset_or_inline(catalog, "diffusion", inputs.pipeline, "pipeline")
    accelerator: AcceleratorSpec = preset_or_inline(catalog, "accelerators", inputs.accelerator, "accelerator")
    _check_pipeline(pipeline, inputs.image_size_px)
    code_keep, code_capacity = _codes(inputs.codes, len(pipeline.unet.block_out_channels))
    categories = [c.name for c in inputs.prompt_mix]
    if len(set(categories)) != len(categories):
        raise InputError("prompt_mix", "category names must be unique")
    share = np.asarray([c.share for c in inputs.prompt_mix], dtype=np.float64)
    return PruningResolved(
        pipeline=pipeline,
        accelerator=accelerator,
        dtype=inputs.dtype,
        peak_flops_per_s=accelerator.peak_for(inputs.dtype),
        bytes_per_element=BYTES_PER_ELEMENT[inputs.dtype],
        image_size_px=float(inputs.image_size_px),
        denoising_steps=float(inputs.denoising_steps),
        guidance_copies=2.0 if inputs.classifier_free_guidance else 1.0,
        batch_size=float(inputs.batch_size),
        budget_ratio=inputs.budget_ratio,
        sinkhorn_epsilon=inputs.sinkhorn_epsilon,
        include_attention_matmuls=inputs.resource_basis == "with_attention_matmuls",
        category_names=tuple(categories),
        code_names=tuple(c.name for c in inputs.codes),
        category_share=share / share.sum(),
        category_capacity=np.asarray([c.required_capacity_ratio for c in inputs.prompt_mix], dtype=np.float64),
        code_keep=code_keep,
        code_capacity=code_capacity,
        figure_batch_sizes=tuple(inputs.figure_batch_sizes),
        unet_channels_last=inputs.unet_channels_last,
        software_stack=(
            None
            if inputs.software_stack is None
            else preset_or_inline(catalog, "stacks", inputs.software_stack, "software_stack")
        ),
        kernel_fits=load_fits(catalog.root),
    )
