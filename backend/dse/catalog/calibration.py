"""Kernel calibration fits (models_db/calibration/fits/) and the device a software stack gives an accelerator.

The engines do no I/O: this module reads the fitted kernel models once per catalog root and hands
them to `Device.from_accelerator`. `stack_device(catalog, accelerator, dtype, stack)` picks, per
kernel family, the fit for (accelerator, dtype, the stack's calibration label), in this order:

1. the accelerator's own fit, for the dtype or its sibling of the same tensor-core rate
   (fp16 <-> bf16 on every part here: the datasheet peaks are equal);
2. a measured sibling's fit (`BORROWED_FITS`): the sibling's efficiency fractions, tiles and
   overheads, applied to this accelerator's own peak and bandwidth (always the spec's own numbers,
   so a sweep over them reaches the kernels);
3. no fit: the roofline with the accelerator's single efficiencies (today's model), and the stack is
   not applied (an NPU or a part nobody measured keeps its own calibration).

Prefill attention: FlashAttention-3 (Hopper-only) and FlashAttention-1 fall back to FlashAttention-2 where the
part has no fit of their own; a part with only a forward + backward fit (A100) uses its efficiency fractions for the
forward pass alone. A stack whose attention computes in another dtype than its GEMMs
(`SoftwareStackSpec.attention_dtype`: an fp16 attention plugin beside fp8 GEMMs) takes that dtype's attention fits,
at that dtype's peak. No part has an fp8 attention table: fp8 attention under a fused kernel takes the kernel's fp16
fit at the fp16 peak (the fp8 kernel meets or beats it), never an unfused softmax the stack does not run. A stack
whose MoE GEMMs keep the experts in another dtype (`SoftwareStackSpec.moe_expert_dtype`:
TensorRT-LLM v0.9.0's fp16 experts beside fp8 attention GEMMs) prices the experts' GEMMs on that dtype's GEMM fit, at
that dtype's peak (`Device.expert_gemm`); one whose MoE GEMMs are Ampere kernels on every part
(`SoftwareStackSpec.moe_gemm_ampere_kernels`) prices them at the share of the fit's peak that an Ampere kernel keeps
on the part (`ampere_kernel_share`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from dse.engines.device import Device
from dse.engines.kernels import AttentionKernelModel, GemmKernelModel
from dse.engines.serving import HostCost
from dse.specs.hardware import AcceleratorSpec
from dse.specs.stacks import SoftwareStackSpec

FITS_FOLDER = Path("calibration") / "fits"
DATA_FOLDER = Path("calibration") / "data"

#: Accelerators measured by no public kernel set, and the measured part whose fits they borrow
#: (same SM count and architecture; their own peaks, bandwidth and capacity replace the sibling's):
#: A100 40 GB = A100 80 GB's GA100 with 1555 GB/s HBM2 (NVIDIA A100 datasheet); H200 = H100's GH100
#: with 4.8 TB/s HBM3e (NVIDIA H200 datasheet); the Grand Teton H100 = H100 SXM's GH100 with 2.4 TB/s HBM2e
#: (pytorch/torchtitan benchmarks/llama3_h100_202412_torchtitan.md); fp8 on H100/H200 uses the H800 fp8 fits (H800 =
#: H100 SXM's SMs and tensor peaks with less NVLink bandwidth; deepseek-ai/DeepGEMM README: DeepGEMM and its
#: CUTLASS 3.6 baseline), and the H800's bf16 kernels use the H100's fits (the same GH100 part and HBM3, NVIDIA
#: H800 datasheet).
BORROWED_FITS: dict[str, tuple[str, ...]] = {
    "a100-40gb": ("a100-80gb",),
    "h100-sxm-96gb-hbm2e": ("h100-sxm", "h800-sxm"),
    "h100-sxm": ("h800-sxm",),
    "h800-sxm": ("h100-sxm",),
    "h200-sxm": ("h100-sxm", "h800-sxm"),
}
#: Dtypes that share fits (equal dense tensor peaks on every part with fits).
DTYPE_SIBLINGS: dict[str, str] = {"fp16": "bf16", "bf16": "fp16"}
#: The dtype whose fused-attention tables stand in where a part has none in the work's dtype (fp8).
FUSED_ATTENTION_FALLBACK_DTYPE = "fp16"


@dataclass(frozen=True)
class KernelFit:
    """One fit file: its id (accelerator.dtype.stack.family), the model and where it came from."""

    id: str
    accelerator: str
    dtype: str
    stack: str
    kernel_family: str
    source: str
    data_file: str
    model: GemmKernelModel | AttentionKernelModel
    mean_abs_pct_error: float
    max_abs_pct_error: float


def _model(model_name: str, params: dict[str, Any]) -> GemmKernelModel | AttentionKernelModel:
    if model_name == "GemmKernelModel":
        return GemmKernelModel(**{k: float(v) for k, v in params.items()})
    values = {k: tuple(float(x) for x in v) if isinstance(v, list) else float(v) for k, v in params.items()}
    return AttentionKernelModel(**values)  # type: ignore[arg-type]


@cache
def load_fits(root: Path) -> dict[str, KernelFit]:
    """Every fit under `root`/calibration/fits, by id."""
    fits: dict[str, KernelFit] = {}
    folder = root / FITS_FOLDER
    for path in sorted(folder.glob("*.fit.json")) if folder.is_dir() else []:
        data = json.loads(path.read_text(encoding="utf-8"))
        fits[data["id"]] = KernelFit(
            id=data["id"],
            accelerator=data["accelerator"],
            dtype=data["dtype"],
            stack=data["stack"],
            kernel_family=data["kernel_family"],
            source=data["source"],
            data_file=data["data_file"],
            model=_model(data["model"], data["params"]),
            mean_abs_pct_error=float(data["residuals"]["mean_abs_pct_error"]),
            max_abs_pct_error=float(data["residuals"]["max_abs_pct_error"]),
        )
    return fits


def load_data(root: Path, fit: KernelFit) -> dict[str, Any]:
    """The measurements a fit was made on (columns, rows, source)."""
    data: dict[str, Any] = json.loads((root / DATA_FOLDER / Path(fit.data_file).name).read_text(encoding="utf-8"))
    return data


def find_fit(
    fits: dict[str, KernelFit], accelerator_id: str, dtype: str, label: str, families: tuple[str, ...]
) -> KernelFit | None:
    """The first fit in the documented order (own part, then borrowed; dtype, then its sibling; families in order)."""
    dtypes = (dtype,) + ((DTYPE_SIBLINGS[dtype],) if dtype in DTYPE_SIBLINGS else ())
    for acc in (accelerator_id, *BORROWED_FITS.get(accelerator_id, ())):
        for family in families:
            for dt in dtypes:
                fit = fits.get(f"{acc}.{dt}.{label}.{family}")
                if fit is not None:
                    return fit
    return None


@dataclass(frozen=True)
class StackDevice:
    """The device and which fit priced each kernel family (ids; None: the roofline)."""

    device: Device
    gemm_fit: str | None
    prefill_attention_fit: str | None
    decode_attention_fit: str | None

    def note(self) -> str:
        stack = self.device.stack
        if stack is None:
            return "no kernel fit for this accelerator and dtype: roofline with the accelerator's single efficiencies"
        parts = [
            f"GEMMs {self.gemm_fit or 'roofline'}",
            f"prefill attention {self.prefill_attention_fit or 'roofline'}",
            f"decode attention {self.decode_attention_fit or 'roofline'}",
        ]
        return f"software stack {stack.id}: " + "; ".join(parts)


def stack_device(
    fits: dict[str, KernelFit],
    accelerator: AcceleratorSpec,
    dtype: str,
    stack: SoftwareStackSpec | None,
    *,
    expert_dtype: str | None = None,
) -> StackDevice:
    """The device of `accelerator` for work in `dtype` under `stack`, with the fits of `load_fits`
    (see the module docstring); `expert_dtype`: the dtype a mixture of experts' expert GEMMs run in, where the
    stack keeps them apart from `dtype`."""
    if stack is None:
        return StackDevice(Device.from_accelerator(accelerator, dtype), None, None, None)
    label = stack.gemm_fit_for(dtype)
    gemm = None if label is None else find_fit(fits, accelerator.id, dtype, label, ("gemm",))
    prefill = None
    fwd_bwd = None
    attention_dtype = stack.attention_dtype or dtype
    if stack.prefill_attention_kernel != "unfused":
        kernels = (stack.prefill_attention_kernel, "flash-attention-2")
        # A fused kernel without a table in the work's dtype (fp8) runs no unfused softmax: it is priced as its
        # fp16 kernel at the fp16 peak, a bound the fp8 kernel meets or beats.
        for kernel, attn_dtype in dict.fromkeys(
            (k, d) for d in dict.fromkeys((attention_dtype, FUSED_ATTENTION_FALLBACK_DTYPE)) for k in kernels
        ):
            prefill = find_fit(fits, accelerator.id, attn_dtype, kernel, ("attention_fwd", "attention_fwd_bwd"))
            if prefill is not None:
                # the same kernel's forward + backward table, for training's backward (absent: from the forward;
                # when the forward is that table's own model, 2.5x the forward already is the table's backward)
                fwd_bwd = find_fit(fits, accelerator.id, attn_dtype, kernel, ("attention_fwd_bwd",))
                fwd_bwd = None if fwd_bwd is not None and fwd_bwd.id == prefill.id else fwd_bwd
                attention_dtype = attn_dtype
                break
    decode = (
        None
        if stack.decode_attention_fit is None
        else find_fit(fits, accelerator.id, dtype, stack.decode_attention_fit, ("attention_decode",))
    )
    if gemm is None and prefill is None and decode is None:
        return StackDevice(Device.from_accelerator(accelerator, dtype), None, None, None)
    prefill_model = None
    if prefill is not None:
        assert isinstance(prefill.model, AttentionKernelModel)
        prefill_model = dataclasses.replace(prefill.model, flop_multiplier=1.0)  # the forward pass alone
    device = Device.from_accelerator(
        accelerator,
        dtype,
        stack=stack,
        gemm=gemm.model if gemm is not None and isinstance(gemm.model, GemmKernelModel) else None,
        prefill_attention=prefill_model,
        decode_attention=(
            decode.model if decode is not None and isinstance(decode.model, AttentionKernelModel) else None
        ),
        attention_fwd_bwd=(
            fwd_bwd.model if fwd_bwd is not None and isinstance(fwd_bwd.model, AttentionKernelModel) else None
        ),
    )
    if attention_dtype != dtype:
        device = _attention_at_peak_of(device, accelerator, attention_dtype)
    if (expert_dtype is not None and expert_dtype != dtype) or stack.moe_gemm_ampere_kernels:
        device = _experts_at(device, fits, accelerator, expert_dtype or dtype, stack)
    return StackDevice(
        device,
        gemm.id if gemm else None,
        prefill.id if prefill else None,
        decode.id if decode else None,
    )


def _attention_at_peak_of(device: Device, accelerator: AcceleratorSpec, dtype: str) -> Device:
    """The device with its fused attention kernels at `dtype`'s peak (the GEMMs keep the work dtype's)."""
    peak = accelerator.peak_for(dtype)

    def at_peak(model: AttentionKernelModel | None) -> AttentionKernelModel | None:
        return None if model is None else dataclasses.replace(model, peak_flops_per_s=peak)

    return dataclasses.replace(
        device,
        prefill_attention=at_peak(device.prefill_attention),
        attention_fwd_bwd=at_peak(device.attention_fwd_bwd),
    )


def _experts_at(
    device: Device, fits: dict[str, KernelFit], accelerator: AcceleratorSpec, dtype: str, stack: SoftwareStackSpec
) -> Device:
    """The device with its experts' GEMMs on the stack's GEMM fit for `dtype`, at that dtype's peak, times the
    share an Ampere kernel keeps on the part where the stack's MoE GEMMs are Ampere kernels (no fit: the work
    dtype's GEMM model, the experts' weights at their own width)."""
    label = stack.gemm_fit_for(dtype)
    fit = None if label is None else find_fit(fits, accelerator.id, dtype, label, ("gemm",))
    if fit is None or not isinstance(fit.model, GemmKernelModel):
        return device
    share = ampere_kernel_share(fits, accelerator.id) if stack.moe_gemm_ampere_kernels else 1.0
    model = dataclasses.replace(
        fit.model,
        peak_flops_per_s=accelerator.peak_for(dtype) * share,
        memory_bandwidth_bytes_per_s=accelerator.memory_bandwidth_bytes_per_s,
    )
    return dataclasses.replace(device, expert_gemm=model)


#: The Ampere part an Ampere-generation kernel's efficiency on another part is measured against.
AMPERE_REFERENCE_ACCELERATOR = "a100-80gb"
#: The Ampere-generation kernel whose tables cover the A100 and newer parts alike: FlashAttention-2 (compiled for
#: Sm80: mma.sync and cp.async, no Hopper wgmma or TMA), Dao-AILab's forward + backward benchmark figures, fp16.
AMPERE_KERNEL_PROBE_FIT = "fp16.flash-attention-2.attention_fwd_bwd"


def ampere_kernel_share(fits: dict[str, KernelFit], accelerator_id: str) -> float:
    """The share of its A100 efficiency (fraction of the dtype's peak) an Ampere-generation kernel keeps on
    `accelerator_id`: FlashAttention-2's fitted efficiency there over its A100 efficiency, the mean over the head
    dimensions both tables have (H100 SXM: 0.53; the Sm80 path reaches about the A100's rate per SM and clock where
    Hopper's wgmma doubles it, as FlashAttention-3's abstract puts it: 'FlashAttention-2 achieving only 35%
    utilization on the H100 GPU'). 1 on the A100 itself and where either part has no such table."""
    probe = fits.get(f"{accelerator_id}.{AMPERE_KERNEL_PROBE_FIT}")
    reference = fits.get(f"{AMPERE_REFERENCE_ACCELERATOR}.{AMPERE_KERNEL_PROBE_FIT}")
    if probe is None or reference is None or probe.id == reference.id:
        return 1.0
    assert isinstance(probe.model, AttentionKernelModel) and isinstance(reference.model, AttentionKernelModel)
    ours = dict(zip(probe.model.head_dims, probe.model.efficiency, strict=True))
    theirs = dict(zip(reference.model.head_dims, reference.model.efficiency, strict=True))
    common = sorted(set(ours) & set(theirs))
    if not common:
        return 1.0
    return float(sum(ours[d] / theirs[d] for d in common) / len(common))


HOST_FIT_SUFFIX = ".host_overhead.host-fit.json"


@dataclass(frozen=True)
class HostOverheadFit:
    """One host-overhead fit (fit_host_overhead.py): per component, its coefficients (seconds) by term."""

    id: str
    data_file: str
    components: dict[str, dict[str, float]]


@cache
def load_host_fits(root: Path) -> dict[str, HostOverheadFit]:
    """Every host-overhead fit under `root`/calibration/fits, by calibration label (the file's third part)."""
    fits: dict[str, HostOverheadFit] = {}
    folder = root / FITS_FOLDER
    for path in sorted(folder.glob(f"*{HOST_FIT_SUFFIX}")) if folder.is_dir() else []:
        data = json.loads(path.read_text(encoding="utf-8"))
        stem = path.name[: -len(HOST_FIT_SUFFIX)]
        fits[stem.split(".")[2]] = HostOverheadFit(
            id=stem,
            data_file=data["data_file"],
            components={
                name: {term: float(v) for term, v in c["coefficients_s"].items()}
                for name, c in data["components"].items()
            },
        )
    return fits


def host_cost(
    fits: dict[str, HostOverheadFit],
    stack: SoftwareStackSpec | None,
    *,
    vocab_size: float,
    tensor_parallel: float,
    scheduler_steps: float = 1.0,
) -> HostCost:
    """The per-iteration host cost of `stack` for a model of `vocab_size` on `tensor_parallel` devices: the sum of
    its critical-path components' fits (those it runs once per multi-step block spread over the `scheduler_steps`
    of a decode block). The fit was measured on A100 hosts; host work is CPU time, so every accelerator takes it.
    No fit named: zero."""
    if stack is None or stack.host_overhead_fit is None:
        return HostCost()
    fit = fits.get(stack.host_overhead_fit)
    if fit is None:
        raise ValueError(f"stack {stack.id}: no host-overhead fit labelled {stack.host_overhead_fit!r}")
    totals = {False: [0.0, 0.0], True: [0.0, 0.0]}  # (fixed, per sequence), every step / once per block
    for component in stack.host_critical_path:
        c = fit.components[component]
        total = totals[component in stack.host_per_scheduler_block]
        total[0] += (
            c.get("fixed", 0.0)
            + c.get("tensor_parallel", 0.0) * (tensor_parallel > 1)
            + c.get("per_vocab_entry", 0.0) * vocab_size
        )
        total[1] += c.get("per_sequence", 0.0) + c.get("per_sequence_vocab_entry", 0.0) * vocab_size
    return HostCost(
        fixed_s=totals[False][0],
        per_sequence_s=totals[False][1],
        block_fixed_s=totals[True][0],
        block_per_sequence_s=totals[True][1],
        decode_block_steps=max(scheduler_steps, 1.0),
    )
