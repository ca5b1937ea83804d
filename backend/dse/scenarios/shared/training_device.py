"""The GPU a training plan runs on (training, plan_search): its software stack's kernel models and its precision.

`training_cluster` turns a resolved cluster, precision and stack into the engine's `ClusterArrays`: the
device for bf16/fp16 work (GEMMs priced by shape with the stack's fitted kernel models, attention by its
FlashAttention model, element-wise ops with the stack's launch cost; `dse.catalog.calibration.stack_device`)
and, for fp8 training, the device of the fp8 GEMMs (Transformer Engine runs only the layers' GEMMs in fp8;
attention, element-wise ops and the logits stay in bf16).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from dse.catalog.calibration import KernelFit, stack_device
from dse.engines.training import ClusterArrays
from dse.scenarios.base import InputError
from dse.specs.hardware import AcceleratorSpec
from dse.specs.network import ClusterSpec
from dse.specs.stacks import SoftwareStackSpec

#: Precisions a training document may ask for: fp8 is Transformer Engine's recipe (bf16 outside the GEMMs).
TrainingDtype = Literal["bf16", "fp16", "fp8"]
#: The software stack of a training document that names none: Megatron-Core with Transformer Engine.
DEFAULT_TRAINING_STACK = "megatron-core-te"


def dtype_field() -> Any:
    """The `dtype` input of a training document (training, plan_search)."""
    return Field(
        "bf16",
        description="Training precision: bf16 or fp16 mixed precision, or fp8 (Transformer Engine: the layers' "
        "GEMMs in fp8, attention, element-wise ops and logits in bf16, fp32 master weights; needs fp8 tensor cores).",
    )


def software_stack_field() -> Any:
    """The `software_stack` input of a training document (training, plan_search)."""
    return Field(
        DEFAULT_TRAINING_STACK,
        title="Software stack",
        description="Software stack preset (stacks/) or an inline spec: GEMM and attention kernel fits, launch "
        "cost, fused ops; null = the roofline with the accelerator's single efficiencies.",
    )


def check_precision(accelerator: AcceleratorSpec, dtype: str, field: str = "dtype") -> None:
    """fp8 training needs fp8 tensor cores: a part whose datasheet lists no fp8 peak is refused (422)."""
    if dtype == "fp8" and "fp8" not in accelerator.peak_flops_per_s:
        raise InputError(
            field,
            f"fp8 training needs fp8 tensor cores; accelerator '{accelerator.id}' lists no fp8 peak "
            "(peak_flops_per_s has no 'fp8'): choose bf16 or an fp8 part (H100, H200)",
        )


def work_dtype(dtype: str) -> str:
    """The dtype of the work outside fp8 GEMMs (attention, element-wise ops, logits)."""
    return "bf16" if dtype == "fp8" else dtype


def training_cluster(
    cluster: ClusterSpec, dtype: str, stack: SoftwareStackSpec | None, fits: dict[str, KernelFit]
) -> ClusterArrays:
    """The engine's cluster: the stack's device for the work dtype, plus the fp8 GEMM device for fp8 plans."""
    accelerator = cluster.accelerator
    device = stack_device(fits, accelerator, work_dtype(dtype), stack).device
    fp8 = stack_device(fits, accelerator, "fp8", stack).device if dtype == "fp8" else None
    return ClusterArrays.from_spec(cluster, dtype=work_dtype(dtype), device=device, fp8_gemm_device=fp8)
