"""Accelerators (GPUs, NPUs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dse.specs.common import Fraction, NonNegativeFloat, PositiveFloat

Dtype = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4"]

#: Bytes per element of each dtype.
BYTES_PER_ELEMENT: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "fp16": 2.0,
    "bf16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5,
}

#: Dtypes a part must state a peak for to run in: no fallback to fp16 (fp4 is packed two per byte and
#: only Blackwell-class tensor cores compute on it).
NO_FALLBACK_DTYPES: frozenset[str] = frozenset({"fp4"})


@dataclass(frozen=True)
class AcceleratorSpec:
    """One accelerator chip with its local memory.

    Efficiencies are the sustained fraction of peak reached by large kernels, calibrated once
    per accelerator from sourced measurements (see `calibration_source`).
    """

    id: str
    name: str
    source: str
    #: What class of device the part is: a GPU or an NPU.
    device_class: Literal["gpu", "npu"]
    peak_flops_per_s: dict[str, PositiveFloat]
    memory_capacity_bytes: PositiveFloat
    memory_bandwidth_bytes_per_s: PositiveFloat
    compute_efficiency: Fraction
    memory_efficiency: Fraction
    kernel_overhead_s: NonNegativeFloat
    calibration_source: str
    #: Peak of the vector / CUDA-core units for element-wise ops (softmax, norms), fp16.
    vector_flops_per_s: PositiveFloat | None = None
    #: Sustained fraction of peak bandwidth of decode attention kernels (per-request K/V GEMVs);
    #: None = memory_efficiency.
    attention_memory_efficiency: Fraction | None = None
    #: Catalog id of the memory preset (memories/), for PIM-capable parts.
    memory_id: str | None = None
    #: Catalog id of the default intra-node link (interconnects/).
    intra_node_link_id: str | None = None
    power_w: PositiveFloat | None = None
    #: A sustained load (a training run) holds this share of the clock the part's kernel fits were timed at: short
    #: kernel benchmarks on an idle GPU run at the maximum boost clock, a loaded part at most at the clock its
    #: datasheet peak is rated at (field_sources gives both). 1.0: the two are the same clock.
    sustained_clock_fraction: Fraction = 1.0
    #: On-demand cloud list price of one device for an hour (USD): an 8-device instance's price / 8; its provider,
    #: region and date in field_sources["on_demand_usd_per_device_hour"]. None: no list price recorded.
    on_demand_usd_per_device_hour: PositiveFloat | None = None
    notes: str = ""
    field_sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # peak_for falls back to fp16, so every accelerator (an inline one too) must state it.
        if "fp16" not in self.peak_flops_per_s:
            raise ValueError("peak_flops_per_s must include 'fp16' (the fallback for dtypes the part lacks)")

    def supports(self, dtype: str) -> bool:
        """Whether the part computes in `dtype` (every dtype falls back to fp16 but fp4)."""
        return dtype in self.peak_flops_per_s or dtype not in NO_FALLBACK_DTYPES

    def peak_for(self, dtype: str) -> float:
        """Peak FLOP/s for a dtype; int8/fp8 fall back to fp16 where the part lacks them (fp4 does not:
        check `supports` first)."""
        if dtype in self.peak_flops_per_s:
            return self.peak_flops_per_s[dtype]
        return self.peak_flops_per_s["fp16"]
