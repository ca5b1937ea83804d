"""Published figures of the `pruning` kind, each with its original source and the tolerance the
tests hold the engine to (tests/validation/test_published_figures.py and the Validation page read
PUBLISHED), and the published comparisons a scenario shows beside its own numbers.

Sources:

* the released checkpoints' parameter counts (diffusers `num_parameters()` of the UNet / text
  encoder of a Hugging Face repository);
* SD 2.1 UNet MACs per step at 512 and 768 px: no paper reports them; they are counts derived by
  hand from the released `unet/config.json`, which this counter must reproduce to their printed
  rounding;
* APTP (Ganjdanesh, Shirkavand, Gao, Huang, ICLR 2025, arXiv 2406.12042) Table 1: SD 2.1 and
  APTP MACs per step and latency per image. APTP's own table could not be retrieved; its rows are
  read from ALTER (Yang et al., NeurIPS 2025, arXiv 2505.21817) Table 1, a SECONDARY source that
  quotes APTP Table 1 with citation;
* APTP's budgets (Base 0.85, Small 0.66) and the released experts (16 / 8 codes): settings, shown
  beside the scenario's own input as context, not checks;
* Stable Diffusion 1.5 timings on an A100 under named software stacks (validation of the op-by-op UNet
  pricing, never fitted): fal-ai/stable-diffusion-benchmarks (end-to-end seconds per image) and the
  diffusers PyTorch 2.0 benchmark (denoising-loop iterations per second).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dse.catalog import Catalog
from dse.catalog.calibration import load_fits, stack_device
from dse.scenarios.base import PublishedComparison, PublishedFigure, Tolerance
from dse.scenarios.kinds.pruning.inputs import PruningResolved
from dse.scenarios.kinds.pruning.studies import (
    latencies_at_ratios,
    macs_self_attention_twice,
    pipeline_parts_s,
    text_encoder_params,
    unet_macs,
    unet_params,
)
from dse.specs.diffusion import DiffusionPipelineSpec
from dse.specs.hardware import AcceleratorSpec

APTP_PAPER = (
    "Ganjdanesh, Shirkavand, Gao, Huang, 'Not All Prompts Are Made Equal: Prompt-based Pruning of "
    "Text-to-Image Diffusion Models', ICLR 2025 (arXiv 2406.12042)"
)
#: APTP Table 1 through its quotation: ALTER's MACs and latency are "measured with batch size 1 in
#: the A100 GPU platform".
APTP_TABLE1_SOURCE = (
    "APTP (Ganjdanesh et al., ICLR 2025, arXiv 2406.12042) Table 1, read from ALTER (Yang et al., NeurIPS 2025, "
    "arXiv 2505.21817) Table 1, a secondary source quoting APTP Table 1: SD 2.1, 768 px, 25 PNDM steps, batch 1, "
    "A100; latency rounded to 0.1 s"
)
APTP_RELEASES = "huggingface.co/rezashkv/diffusion_pruning (released experts)"
SD21_DERIVED_SOURCE = (
    "No paper reports it: a count derived by hand from stabilityai/stable-diffusion-2-1 unet/config.json "
    "(diffusers UNet2DConditionModel; batch 1, one denoising step; QK^T and PV counted once), printed to 0.1 G"
)

#: The published setting of APTP Table 1: image side, denoising steps, batch (guidance on, diffusers default).
APTP_TABLE1_IMAGE_SIDE_PX = 768.0
APTP_TABLE1_DENOISING_STEPS = 25.0
APTP_TABLE1_BATCH = 1.0
#: Precision the engine prices that setting in: APTP's scripts/metrics/generate_fid_images.py loads the
#: StableDiffusionPipeline without a torch_dtype, i.e. fp32 (the paper does not state the timing precision).
APTP_TABLE1_DTYPE = "fp32"
#: The preset of the published hardware.
APTP_TABLE1_ACCELERATOR = "a100-80gb"
#: SD 2.1 row: UNet MACs per denoising step (APTP's op counter) and latency per image.
APTP_TABLE1_SD21_UNET_MACS_PER_STEP = 1384.2e9
APTP_TABLE1_SD21_LATENCY_S = 4.0
#: (record key, model and target data, UNet MACs per step, latency per image in s).
APTP_TABLE1_ROWS: tuple[tuple[str, str, float, float], ...] = (
    ("aptp_base_cc3m_latency_ratio", "APTP-Base (0.85), CC3M", 1182.8e9, 3.4),
    ("aptp_small_cc3m_latency_ratio", "APTP-Small (0.66), CC3M", 916.3e9, 2.6),
    ("aptp_base_mscoco_latency_ratio", "APTP-Base (0.78), MS-COCO", 1076.6e9, 3.1),
    ("aptp_small_mscoco_latency_ratio", "APTP-Small (0.64), MS-COCO", 890.0e9, 2.5),
)
#: APTP's budgets on the mean resource ratio (SD 2.1, CC3M), by model name.
APTP_BUDGETS: tuple[tuple[str, float], ...] = (("APTP-Base", 0.85), ("APTP-Small", 0.66))
#: Architecture codes (experts) in the released checkpoints.
APTP_RELEASED_CODES: tuple[tuple[str, int], ...] = (("APTP-Base-CC3M", 16), ("APTP-Small-CC3M", 8))

#: Why the Small rows miss (recorded, not tuned).
_SMALL_ROWS_MISS = (
    "Engine's latency cut is smaller than published for the Small experts (ratio 0.696 vs 0.65, +7.1%; "
    "0.679 vs 0.625, +8.7%). In the engine the unpruned VAE decoder is a fixed 0.08 s (2% of SD 2.1's 4.00 s) "
    "and the pruned UNet's time falls less than its MACs (0.689 at R 0.662: norms, residual adds and "
    "concatenations on the unpruned residual stream keep their cost, and the convolutions, which run on TF32 "
    "tensor cores, are cheap next to the fp32 linears that pruning cuts least); the published "
    "latencies fall at least in proportion to MACs (0.65 at 0.662), as APTP's experts also drop whole blocks "
    "(depth), which one uniform width keep does not model."
)
#: How the fp32 setting is priced (the absolute latency's note).
_FP32_MATH_NOTE = (
    "Priced in fp32 as PyTorch 2.1 (APTP's env.yaml: torch 2.1.2, diffusers 0.23.1) runs it on an A100: "
    "convolutions on TF32 tensor cores (cuDNN's allow_tf32 defaults to True), linears in fp32 on the CUDA cores "
    "(matmul allow_tf32 defaults to False), attention in the memory-efficient kernel's 3xTF32 (fp32 SDPA on "
    "compute capability 8.0): a 156 ms UNet step (25 steps, guidance), 0.08 s VAE decoder. Before the math "
    "modes (everything at the fp32 peak) the engine gave 8.7 s (+118.6%). The roofline's single efficiency "
    "(0.71 of each peak) prices all three."
)
#: Tolerance on a latency ratio (row / SD 2.1): the latencies are printed to 0.1 s, so a ratio carries
#: up to 0.05/2.5 + 0.05/4.0 = 3.3% of rounding alone; the rest allows for carrying R as a ratio
#: between APTP's MAC counter and this one (they weigh attention differently).
LATENCY_RATIO_TOLERANCE = Tolerance.within(0.05)


@dataclass(frozen=True)
class _Figure:
    """A published figure and the engine's number for it on any (pipeline, accelerator) pair."""

    record: PublishedFigure
    #: The preset ids the figure is about; a scenario shows it when its inputs are these presets.
    pipeline: str
    accelerator: str | None
    compute: Callable[[DiffusionPipelineSpec, AcceleratorSpec], float]


def _figure(
    key: str,
    quantity: str,
    published: float,
    unit: str,
    source: str,
    tolerance: Tolerance,
    compute: Callable[[DiffusionPipelineSpec, AcceleratorSpec], float],
    *,
    pipeline: str = "sd21",
    accelerator: str | None = None,
    known_miss: str | None = None,
    note: str = "",
) -> _Figure:
    def engine(catalog: Catalog) -> float:
        return compute(
            catalog.get("diffusion", pipeline), catalog.get("accelerators", accelerator or APTP_TABLE1_ACCELERATOR)
        )

    record = PublishedFigure(
        key=key,
        quantity=quantity,
        published=published,
        unit=unit,
        source=source,
        tolerance=tolerance,
        engine=engine,
        known_miss=known_miss,
        note=note,
    )
    return _Figure(record=record, pipeline=pipeline, accelerator=accelerator, compute=compute)


#: The last (pipeline, accelerator, latencies): the five Table 1 figures of one scenario share one engine call.
_LAST_TABLE1: list[tuple[DiffusionPipelineSpec, AcceleratorSpec, dict[str, Any]]] = []


def _table1_latencies(pipeline: DiffusionPipelineSpec, accelerator: AcceleratorSpec) -> dict[str, Any]:
    """Engine latencies in APTP Table 1's setting: each published row is one pruned model whose R is
    the row's published MACs ratio (row MACs / SD 2.1 MACs, both from APTP's counter)."""
    last = _LAST_TABLE1[0] if _LAST_TABLE1 else None
    if last is not None and last[0] is pipeline and last[1] is accelerator:
        return last[2]
    ratios = [macs / APTP_TABLE1_SD21_UNET_MACS_PER_STEP for _, _, macs, _ in APTP_TABLE1_ROWS]
    latencies = latencies_at_ratios(
        pipeline,
        accelerator,
        resource_ratios=ratios,
        image_side_px=APTP_TABLE1_IMAGE_SIDE_PX,
        denoising_steps=APTP_TABLE1_DENOISING_STEPS,
        batch=APTP_TABLE1_BATCH,
        dtype=APTP_TABLE1_DTYPE,
    )
    _LAST_TABLE1[:] = [(pipeline, accelerator, latencies)]
    return latencies


def _latency_ratio(row: int) -> Callable[[DiffusionPipelineSpec, AcceleratorSpec], float]:
    def compute(pipeline: DiffusionPipelineSpec, accelerator: AcceleratorSpec) -> float:
        lat = _table1_latencies(pipeline, accelerator)
        return float(lat["row_latency_s"][row]) / float(lat["full_latency_s"])

    return compute


def _sd21_latency(pipeline: DiffusionPipelineSpec, accelerator: AcceleratorSpec) -> float:
    return float(_table1_latencies(pipeline, accelerator)["full_latency_s"])


def _sd21_macs(px: int, with_attention: bool) -> Callable[[DiffusionPipelineSpec, AcceleratorSpec], float]:
    def compute(pipeline: DiffusionPipelineSpec, _: AcceleratorSpec) -> float:
        return unet_macs(pipeline, float(px), with_attention=with_attention)

    return compute


_SETTING = f"768 px, 25 steps, batch 1, CFG, {APTP_TABLE1_DTYPE}, A100 80 GB preset"
_FIGURES: tuple[_Figure, ...] = (
    _figure(
        "sd21_unet_params",
        "Stable Diffusion 2.1 UNet parameters",
        865_910_724,
        "count",
        "diffusers UNet2DConditionModel.from_pretrained('stabilityai/stable-diffusion-2-1', subfolder='unet')"
        ".num_parameters() = 865,910,724 (865.9 M)",
        Tolerance.within(0.0),
        lambda pipeline, _: unet_params(pipeline),
    ),
    _figure(
        "sd15_unet_params",
        "Stable Diffusion 1.5 UNet parameters",
        859_520_964,
        "count",
        "diffusers UNet2DConditionModel.from_pretrained('runwayml/stable-diffusion-v1-5', subfolder='unet')"
        ".num_parameters() = 859,520,964 (the '860M UNet' of the Stable Diffusion v1 model card)",
        Tolerance.within(0.0),
        lambda pipeline, _: unet_params(pipeline),
        pipeline="sd15",
    ),
    _figure(
        "sd15_text_encoder_params",
        "CLIP ViT-L/14 text tower parameters (Stable Diffusion 1.5 text encoder)",
        123_060_480,
        "count",
        "transformers CLIPTextModel.from_pretrained('openai/clip-vit-large-patch14').num_parameters() = 123,060,480",
        Tolerance.within(0.0),
        lambda pipeline, _: text_encoder_params(pipeline),
        pipeline="sd15",
    ),
    # Tolerance: half the printed step (0.05 G; 0.5 G for "402 G"), tighter than the 1%.
    *(
        _figure(
            f"sd21_unet_macs_{px}px_{'with_attention' if attention else 'conv_linear'}",
            f"SD 2.1 UNet MACs per step at {px} px ({'with attention matmuls' if attention else 'conv+linear'})",
            published,
            "MAC",
            SD21_DERIVED_SOURCE + (" (402 G printed to 1 G)" if published == 402e9 else ""),
            Tolerance.within(half_step / published),
            _sd21_macs(px, attention),
        )
        for px, attention, published, half_step in (
            (512, False, 339.1e9, 0.05e9),
            (512, True, 402e9, 0.5e9),
            (768, False, 760.5e9, 0.05e9),
            (768, True, 1074.6e9, 0.05e9),
        )
    ),
    _figure(
        "aptp_sd21_unet_macs_768px",
        "APTP's op counter: SD 2.1 UNet MACs per step at 768 px (self-attention counted twice)",
        APTP_TABLE1_SD21_UNET_MACS_PER_STEP,
        "MAC",
        APTP_TABLE1_SOURCE,
        Tolerance.within(0.001),
        lambda pipeline, _: macs_self_attention_twice(pipeline, APTP_TABLE1_IMAGE_SIDE_PX),
        note="This counter's split (conv+linear 760.5 G, self-attention 310.1 G, cross-attention 4.0 G) reproduces "
        "APTP's 1384.2 G only with the self-attention matmuls counted twice; R is a ratio within one counter.",
    ),
    _figure(
        "aptp_sd21_latency_768px",
        f"SD 2.1 latency per image ({_SETTING})",
        APTP_TABLE1_SD21_LATENCY_S,
        "s",
        APTP_TABLE1_SOURCE,
        Tolerance.within(0.25),
        _sd21_latency,
        accelerator=APTP_TABLE1_ACCELERATOR,
        note=_FP32_MATH_NOTE,
    ),
    *(
        _figure(
            key,
            f"{label}: latency / SD 2.1 latency at R = {macs / APTP_TABLE1_SD21_UNET_MACS_PER_STEP:.3f} ({_SETTING})",
            latency_s / APTP_TABLE1_SD21_LATENCY_S,
            "",
            APTP_TABLE1_SOURCE,
            LATENCY_RATIO_TOLERANCE,
            _latency_ratio(row),
            accelerator=APTP_TABLE1_ACCELERATOR,
            known_miss=_SMALL_ROWS_MISS if "Small" in label else None,
        )
        for row, (key, label, macs, latency_s) in enumerate(APTP_TABLE1_ROWS)
    ),
)

# -- Stable Diffusion 1.5 on an A100 under named software stacks (op-by-op pricing, validation only) -----

FAL_SD15_SOURCE = (
    "fal-ai/stable-diffusion-benchmarks README.md @ c0fa82c837f6204f802fabda0b2452d13b27fe20, 'SD1.5 (End-to-end) "
    "Benchmarks': A100 80G SXM, runwayml/stable-diffusion-v1-5, 512x512, 50 steps, fp16 weights, one prompt "
    "(diffusers 0.22 defaults: classifier-free guidance on), mean of 10 runs after 3 warm-ups, torch 2.1 "
    "(benchmarks/benchmark_diffusers.py: torch.compile(unet, mode='reduce-overhead') for the compiled row)"
)
DIFFUSERS_SD15_SOURCE = (
    "huggingface/diffusers docs/source/en/optimization/torch2.0.mdx @ 07dc8feb1d54c93adb9a7443a48a6741e1dbf43f, "
    "'A100 (batch size: N)' tables, row 'SD - txt2img', column 'torch 2.0 - no compile' / 'torch 2.0 - compile' "
    "(diffusers 0.17.0.dev0; PyTorch 2.0.1 per the PyTorch blog's June 2023 update of 'Accelerated Diffusers with "
    "PyTorch 2.0'): the progress bar's iterations per second (runwayml/stable-diffusion-v1-5, fp16, 512 px, 50 steps, "
    "N prompts as num_images_per_prompt, UNet in channels_last, compile mode='reduce-overhead', fullgraph=True). "
    "The A100 variant is not stated (the same authors' March 2023 runs used 'the 40 GB version')"
)
SD15_TIMING_ACCELERATOR = "a100-80gb"
SD15_TIMING_IMAGE_SIDE_PX = 512.0
SD15_TIMING_STEPS = 50.0
#: UNet evaluations of those 50 steps: SD 1.5's scheduler is PNDM with skip_prk_steps, whose timesteps repeat one
#: (huggingface/diffusers src/diffusers/schedulers/scheduling_pndm.py set_timesteps, plms_timesteps =
#: concatenate([t[:-1], t[-2:-1], t[-1:]]): 51 for 50 steps; v0.17.0 @ 6bbde99c and v0.22.0 @ df60b35e), each with
#: guidance (the pipeline's default guidance_scale 7.5 > 1 doubles the UNet batch: torch.cat([latents] * 2)).
SD15_UNET_EVALUATIONS = 51.0
#: The pipeline's progress bar counts 50 of those 51 loop iterations (it skips the first: num_warmup_steps =
#: len(timesteps) - num_inference_steps), and the rate it prints when it closes is the overall one, updates over the
#: time since the bar opened, not its running average (tqdm/tqdm tqdm/std.py, tqdm.close: "stats for overall rate (no
#: weighted average)", self._ema_dt = lambda: None): the it/s it reports is 50 / the time of 51 loop iterations.
SD15_PROGRESS_BAR_UPDATES = 50.0
#: Host-serialized tensor ops of one denoising-loop iteration outside the UNet, in diffusers' StableDiffusionPipeline
#: with PNDM (v0.17.0 and v0.22.0: pipeline_stable_diffusion.py __call__, scheduling_pndm.py step_plms and
#: _get_prev_sample), once the scheduler holds four past outputs: torch.cat([latents] * 2) (1); the guidance
#: uncond + g * (text - uncond) (3); prev_timestep = timestep - 20 on the CUDA timestep (1); the fourth-order PLMS
#: combination (1/24) * (55 e1 - 59 e2 + 37 e3 - 9 e4) (8); _get_prev_sample's four tensor ops on the latents (4);
#: reading the CUDA timesteps back to index the CPU alphas_cumprod and to test prev_timestep >= 0 (one compare kernel
#: and three device-to-host reads: 4). The `if prev_timestep >= 0` on a CUDA tensor synchronizes the host with the GPU
#: every iteration, so these ops are not hidden behind the UNet's GPU time: each costs its launch (priced on the eager
#: PyTorch stack, whatever runs the UNet). The CPU scalar arithmetic on alphas_cumprod is not counted.
SD15_DIFFUSERS_LOOP_OPS_PER_STEP = 21.0
#: UNet evaluations of fal's TensorRT row: NVIDIA's demo/Diffusion StableDiffusionPipeline, built by fal's
#: benchmarks/benchmark_tensorrt.py without a scheduler argument, defaults to DDIM (scheduler="DDIM": NVIDIA/TensorRT
#: demo/Diffusion/stable_diffusion_pipeline.py @ f3cd7b6a, the 9.0.1 OSS release; fal clones the release/9.0 branch of a
#: fork of it), whose 50 steps are 50 UNet evaluations (no repeated timestep, unlike PNDM).
TENSORRT_DEMO_UNET_EVALUATIONS = 50.0
#: Host-serialized tensor ops of one iteration of that demo's loop outside the UNet engine (denoise_latent, and
#: utilities.py Engine.infer and DDIMScheduler.step @ f3cd7b6a, eta 0, epsilon prediction): torch.cat([latents] * 2)
#: (1), timestep.float() (1), the three input copies into the engine's bindings (3), the guidance (3), DDIM's step on
#: 0-d CUDA alphas and the latents (16). Engine.infer calls cudaStreamSynchronize after every graph launch, so they are
#: not hidden behind the UNet either: each costs an eager PyTorch launch.
TENSORRT_DEMO_LOOP_OPS_PER_STEP = 24.0
#: The stacks of the published runs: PyTorch 2.0 (diffusers' table) and 2.1 (fal), whose SDPA runs FlashAttention v1.
SD15_EAGER_STACK = "pytorch-2.1-eager-sdpa"
SD15_COMPILE_STACK = "torch-2.1-compile"
#: Tolerance on a Stable Diffusion timing: published eager-mode timings of this very pipeline on an A100 differ
#: by 1.46x between PyTorch releases (fal, torch 2.1: (1.604 s - text encoder and VAE) / 50 = 31.7 ms per
#: UNet step; diffusers, torch 2.0: 1 / 21.66 it/s = 46.2 ms), so a model of "PyTorch eager" cannot be held
#: closer than a quarter to any one of them.
SD15_TIMING_TOLERANCE = Tolerance.within(0.25)
_KERNEL_TIME_MISS = (
    "The engine prices the UNet's GPU kernels faster than measured ({detail}). Both published compiled runs use "
    "mode='reduce-overhead' (CUDA graphs), so their UNet step is GPU time alone (the loop's other ops, which PNDM's "
    "per-step synchronization leaves exposed, are priced beside it: 21 eager launches, ~0.3 ms per iteration): "
    "diffusers' A100 table implies 72 TF/s "
    "sustained at one prompt and 96-100 TF/s at 4 and 16 (2 x 401.6 GMAC per UNet evaluation; the step grows 3.8x "
    "from 4 to 16 prompts, so it is GPU-bound), the engine 110 and 139 TF/s. Attention runs at FlashAttention v1's "
    "measured rates with SD's 40- and 80-wide heads padded to v1's 64 and 128 (PyTorch 2.0/2.1 SDPA), group norms "
    "as two reads and a write, eager PyTorch's convolution bias as its own in-place add; convolutions, 55% of the "
    "UNet's FLOPs, are still implicit GEMMs on cuBLAS GEMM fits "
    "(microsoft/vidur and LLMCompass LLM shapes: 177-245 TF/s on these shapes). NVIDIA's cuDNN sweeps on A100 "
    "(Deep Learning Performance Guide, 'Convolutional Layers User's Guide') are published as plots only, which the "
    "stored copies here do not carry, and no kernel-level cuDNN or TensorRT convolution table on A100 was found (see "
    "models_db/calibration/README.md). The NCHW <-> NHWC transposes around cuDNN's convolutions are priced but "
    "explain less than measured: channels-last saves fal's compiled UNet ~5.8 ms per step ((1.354 - 1.058 s) / 51), "
    "the engine 1.3 ms. Not the GPU variant alone: diffusers' table does not name its A100 (priced on the 80 GB SXM "
    "preset; the 40 GB preset would take these rows 4-9 points closer), but fal's named A100 80 GB SXM shows the same "
    "1.3-1.4x per UNet step under torch.compile and TensorRT; and not one software version: the same table's 'torch "
    "nightly' columns (May 2023) are 7-22% faster than its 'torch 2.0' ones on the same machine."
)
#: The batch-1 eager row's further gap: eager PyTorch at one prompt is bound by the host's per-op cost.
_HOST_BOUND = (
    " At one prompt eager PyTorch is also host-bound on that machine: in the same table eager takes 1.26x the "
    "compiled step at 4 and at 16 prompts (the unfused ops' GPU time) but 2.03x at one prompt, and 1.10x on the RTX "
    "4090 machine (24.2 vs 22.0 ms); fal's torch 2.1 eager A100 run took ~31 ms per UNet step against this run's "
    "45.3 ms. Fully host-bound, 45.3 ms over the ~980 kernels of the engine's eager UNet is ~48 us per kernel, 2-10x "
    "the 5-25 us of dispatch per op usually quoted for eager PyTorch; the engine's eager stack already adds "
    "LLMCompass' synchronized per-op wall-clock costs (28.5 us per GEMM, 15.3 us per element-wise kernel) to each "
    "kernel, and a host/GPU overlap model with those costs would lower, not raise, this step. The benchmark's host "
    "CPU is not stated, so no host cost is modelled for it."
)
#: The batch-16 eager row's further gap: the unfused ops' GPU time.
_UNFUSED_AT_16 = (
    " At sixteen prompts the step is GPU-bound, and eager's excess over compiled in the same table, the unfused ops' "
    "GPU time, is 66 ms per iteration (322 vs 256 ms; 17 ms at four prompts, x3.8 like the step) against the "
    "engine's 26 ms (211 vs 185 ms): the unfused memory-bound passes are priced 2.5x too fast, the fused step 1.4x. "
    "The engine's eager step there equals its GPU time alone (212 ms with the vidur GEMM fit and 3 us launches), so "
    "the eager stack's per-op wall-clock costs add nothing at that batch. Their bytes are counted from the code "
    "that runs (diffusers' ResnetBlock2D, Transformer2DModel and AttnProcessor2_0, PyTorch's GroupNorm and cuDNN "
    "layout rules: ~74 GB per step at 16 prompts against the compiled step's ~31 GB): what is left is the achieved "
    "bandwidth of eager PyTorch's GroupNorm statistics (one scalar Welford update per element), broadcast and layout-"
    "copy kernels on A100, for which no kernel-level table was found (models_db/calibration/README.md, round 6)."
)
#: The batch-4 eager row, within tolerance at its edge.
_WITHIN_AT_THE_EDGE = (
    "Within tolerance at the edge (14.0 vs 11.6 it/s, +20%): the same kernel-time gap as the other rows, partly "
    "hidden at 4 prompts by the eager stack's per-op wall-clock costs."
)


def _stack(catalog: Catalog, stack: str) -> Any:
    spec = catalog.get("stacks", stack)
    accelerator = catalog.get("accelerators", SD15_TIMING_ACCELERATOR)
    return stack_device(load_fits(catalog.root), accelerator, "fp16", spec).device


def _sd15_parts(
    catalog: Catalog, unet_stack: str, other_stack: str, batch: float, channels_last: bool
) -> dict[str, float]:
    """One UNet step, the text encoder and the VAE of SD 1.5 at `batch` prompts with guidance."""
    return pipeline_parts_s(
        catalog.get("diffusion", "sd15"),
        image_side_px=SD15_TIMING_IMAGE_SIDE_PX,
        batch=batch,
        guidance_copies=2.0,
        unet_device=_stack(catalog, unet_stack),
        other_device=_stack(catalog, other_stack),
        unet_channels_last=channels_last,
    )


def _loop_ops_s(catalog: Catalog, batch: float, ops: float) -> float:
    """`ops` host-serialized element-wise ops of one denoising-loop iteration outside the UNet, each on the latents
    of `batch` prompts with guidance (2 x batch x channels x side^2, fp16: read and written once), priced as eager
    PyTorch launches them (the launch cost plus the memory time)."""
    unet = catalog.get("diffusion", "sd15").unet
    side = SD15_TIMING_IMAGE_SIDE_PX / unet.vae_scale_factor
    latent_bytes = 2.0 * batch * unet.in_channels * side * side * 2.0
    device = _stack(catalog, SD15_EAGER_STACK)
    return ops * float(device.elementwise_time_s(0.0, 2.0 * latent_bytes).time_s)


def _sd15_end_to_end_s(
    unet_stack: str, other_stack: str, channels_last: bool, evaluations: float, loop_ops: float
) -> Callable[[Catalog], float]:
    """Seconds per image: text encoder + `evaluations` loop iterations (a UNet step and the loop's other ops) + VAE
    decoder, batch 1 with guidance (the UNet may be compiled while the text encoder and VAE run eagerly, as in fal's
    compiled row)."""

    def engine(catalog: Catalog) -> float:
        parts = _sd15_parts(catalog, unet_stack, other_stack, 1.0, channels_last)
        iteration_s = parts["unet_step_s"] + _loop_ops_s(catalog, 1.0, loop_ops)
        return evaluations * iteration_s + parts["text_encoder_s"] + parts["vae_decoder_s"]

    return engine


def _sd15_iterations_per_s(stack: str, batch: float) -> Callable[[Catalog], float]:
    """Denoising-loop iterations per second as the progress bar reports them: 50 updates over 51 loop iterations,
    each a UNet step at 2 x batch (guidance; the benchmark's UNet is channels-last) and the loop's other ops."""

    def engine(catalog: Catalog) -> float:
        step_s = _sd15_parts(catalog, stack, stack, batch, True)["unet_step_s"]
        iteration_s = step_s + _loop_ops_s(catalog, batch, SD15_DIFFUSERS_LOOP_OPS_PER_STEP)
        return SD15_PROGRESS_BAR_UPDATES / (SD15_UNET_EVALUATIONS * iteration_s)

    return engine


_SD15_SETTING = "SD 1.5, 512 px, 50 steps, guidance on, fp16, A100 80 GB preset"
#: fal's rows: (key, what ran, stacks (UNet, text encoder + VAE), UNet channels-last, published s, fal's row,
#: miss or None, note).
_FAL_ROWS: tuple[tuple[str, str, tuple[str, str], bool, float, str, str | None, str], ...] = (
    (
        "sd15_a100_eager_sdpa_seconds_per_image",
        "diffusers eager with SDPA",
        (SD15_EAGER_STACK, SD15_EAGER_STACK),
        False,
        1.604,
        "Diffusers (torch 2.1, SDPA)",
        None,
        "Before op-by-op pricing the roofline gave 0.76 s (every layer one kernel at the preset's efficiencies). "
        "Within tolerance by compensation: at one prompt the eager stack adds LLMCompass' synchronized per-op "
        "wall-clock costs (~16 ms per UNet step) to its kernels' GPU time (17.9 ms with GPU-only costs), while the "
        "compiled and TensorRT rows show that GPU time ~1.35x too fast; eager PyTorch overlaps its host with the GPU "
        "between synchronizations, so a max(host, GPU) model would need a larger per-op host cost than LLMCompass'. "
        "Not priced: the safety checker (a CLIP ViT-L/14 vision tower at 224 px) and the PIL conversion that "
        "diffusers 0.22 runs on every image (output_type 'pil').",
    ),
    (
        "sd15_a100_compiled_unet_seconds_per_image",
        "UNet under torch.compile, text encoder and VAE eager",
        (SD15_COMPILE_STACK, SD15_EAGER_STACK),
        False,
        1.354,
        "Diffusers (torch 2.1, SDPA, compiled)",
        _KERNEL_TIME_MISS.format(detail="0.855 s vs 1.354 s, -37%: 15.9 ms per UNet step vs ~26 ms"),
        "",
    ),
    (
        "sd15_a100_compiled_channels_last_unet_seconds_per_image",
        "UNet channels-last under torch.compile, text encoder and VAE eager",
        (SD15_COMPILE_STACK, SD15_EAGER_STACK),
        True,
        1.058,
        "Diffusers (torch 2.1, SDPA, compiled, NCHW channels last)",
        _KERNEL_TIME_MISS.format(detail="0.787 s vs 1.058 s, -26%: 14.6 ms per UNet step vs ~20 ms"),
        "",
    ),
    (
        "sd15_a100_tensorrt_seconds_per_image",
        "TensorRT with CUDA graphs",
        ("tensorrt", "tensorrt"),
        False,
        0.819,
        "TensorRT 9.0 (cuda graphs, static shapes)",
        None,
        "Within tolerance at the edge (0.624 s, -24%): 50 DDIM iterations (the demo's default scheduler), each an "
        "11.8 ms UNet step and 24 host-serialized loop ops (~0.4 ms), against ~15.6 ms per iteration measured; the "
        "convolutions, priced on cuBLAS GEMM fits, are the likely remainder (no public TensorRT convolution kernel "
        "table).",
    ),
)
#: Loop iterations per image and host-serialized ops per iteration outside the UNet: diffusers' PNDM pipeline (False)
#: and NVIDIA's TensorRT demo with DDIM (True).
_LOOP_OF: dict[bool, tuple[float, float]] = {
    False: (SD15_UNET_EVALUATIONS, SD15_DIFFUSERS_LOOP_OPS_PER_STEP),
    True: (TENSORRT_DEMO_UNET_EVALUATIONS, TENSORRT_DEMO_LOOP_OPS_PER_STEP),
}
_SD15_TIMINGS: tuple[PublishedFigure, ...] = (
    *(
        PublishedFigure(
            key=key,
            quantity=f"Seconds per image, {what} ({_SD15_SETTING}; stack{'s' if len(set(stacks)) > 1 else ''} "
            f"{' + '.join(dict.fromkeys(stacks))})",
            published=published,
            unit="s",
            source=f"{FAL_SD15_SOURCE}, row '{row}' mean",
            tolerance=SD15_TIMING_TOLERANCE,
            engine=_sd15_end_to_end_s(*stacks, channels_last, *_LOOP_OF[stacks[0] == "tensorrt"]),
            known_miss=miss,
            note=note,
            dtype="fp16",
            devices=1.0,
        )
        for key, what, stacks, channels_last, published, row, miss, note in _FAL_ROWS
    ),
    *(
        PublishedFigure(
            key=f"sd15_a100_{label}_batch{batch}_iterations_per_s",
            quantity=f"Denoising iterations per second at {batch} prompt{'s' if batch > 1 else ''} "
            f"({_SD15_SETTING}; UNet channels-last; stack {stack})",
            published=published,
            unit="it/s",
            source=DIFFUSERS_SD15_SOURCE,
            tolerance=SD15_TIMING_TOLERANCE,
            engine=_sd15_iterations_per_s(stack, float(batch)),
            known_miss=None if detail is None else _KERNEL_TIME_MISS.format(detail=detail) + host,
            note="" if detail is not None else _WITHIN_AT_THE_EDGE,
            dtype="fp16",
            devices=1.0,
        )
        for label, stack, batch, published, detail, host in (
            ("eager_sdpa", SD15_EAGER_STACK, 1, 21.66, "29.6 vs 21.66 it/s, +37%", _HOST_BOUND),
            ("eager_sdpa", SD15_EAGER_STACK, 4, 11.6, None, ""),
            ("eager_sdpa", SD15_EAGER_STACK, 16, 3.04, "4.63 vs 3.04 it/s, +52%", _UNFUSED_AT_16),
            ("compiled", SD15_COMPILE_STACK, 1, 44.03, "65.8 vs 44.03 it/s, +49%", ""),
            ("compiled", SD15_COMPILE_STACK, 4, 14.62, "20.0 vs 14.62 it/s, +37%", ""),
            ("compiled", SD15_COMPILE_STACK, 16, 3.83, "5.28 vs 3.83 it/s, +38%", ""),
        )
    ),
)

#: The published figures this kind is validated against.
PUBLISHED: tuple[PublishedFigure, ...] = tuple(f.record for f in _FIGURES) + _SD15_TIMINGS

#: Tolerance of the pipeline's own published UNet parameter count (the preset's field), as the issue set it.
PIPELINE_PARAMS_TOLERANCE = Tolerance.within(0.01)


#: The latest (pipeline, accelerator, Validation rows), newest first: the rows depend on nothing else, and
#: evaluations (a quick answer, then the whole one, a sweep's points, the home page's examples) resolve the
#: same few catalog entries (matched by identity).
_RECENT_ROWS: list[tuple[DiffusionPipelineSpec, AcceleratorSpec, list[PublishedComparison]]] = []
_RECENT_ROWS_KEPT = 8


def validation_rows(r: PruningResolved) -> list[PublishedComparison]:
    """The published figures about this scenario's pipeline (and accelerator), beside the engine's numbers."""
    recent = list(_RECENT_ROWS)  # a copy: another thread may replace the list's entries
    rows = next((rows for p, a, rows in recent if p is r.pipeline and a is r.accelerator), None)
    if rows is None:
        rows = _validation_rows(r)
        _RECENT_ROWS[:] = [(r.pipeline, r.accelerator, rows), *recent[: _RECENT_ROWS_KEPT - 1]]
    return [row.model_copy() for row in rows]  # each answer its own rows


def _validation_rows(r: PruningResolved) -> list[PublishedComparison]:
    rows = [
        PublishedComparison.of(
            quantity=f"{r.pipeline.name} UNet parameters",
            published=r.pipeline.published_unet_params_count,
            engine=unet_params(r.pipeline),
            unit="count",
            tolerance=PIPELINE_PARAMS_TOLERANCE,
            source=r.pipeline.published_unet_params_source,
        )
    ]
    for figure in _FIGURES:
        if figure.pipeline != "sd21" or figure.record.key == "sd21_unet_params":
            continue  # the pipeline's own count is the row above
        if r.pipeline.id != figure.pipeline:
            continue
        if figure.accelerator is not None and not r.accelerator.id.startswith("a100"):
            continue  # latencies only on the published hardware
        record = figure.record
        rows.append(
            PublishedComparison.of(
                quantity=record.quantity.replace("A100 80 GB preset", r.accelerator.name),
                published=record.published,
                engine=figure.compute(r.pipeline, r.accelerator),
                unit=record.unit,
                tolerance=record.tolerance,
                source=record.source,
                note=record.known_miss or record.note,
            )
        )
    return rows


def context_rows(r: PruningResolved, mean_ratio: float) -> list[PublishedComparison]:
    """Published settings beside this scenario's own inputs: APTP's budgets and the released K."""
    rows = [
        PublishedComparison.of(
            quantity=f"{label} budget on the mean resource ratio (SD 2.1, CC3M) vs this scenario's mean R",
            published=budget,
            engine=mean_ratio,
            source=f"{APTP_PAPER}, Table 1 model names (read from ALTER, arXiv 2505.21817, Table 1)",
            note="holds" if mean_ratio <= budget + 1e-9 else "not met",
            role="context",
        )
        for label, budget in APTP_BUDGETS
    ]
    rows += [
        PublishedComparison.of(
            quantity=f"architecture codes (K) in the released {release} checkpoints vs this scenario's K",
            published=float(codes),
            engine=float(len(r.code_names)),
            unit="count",
            source=f"{APTP_RELEASES} ({release}/arch0..arch{codes - 1})",
            role="context",
        )
        for release, codes in APTP_RELEASED_CODES
    ]
    return rows
