"""DRAM and PIM memories, and request-length distributions of inference workloads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dse.specs.common import NonNegativeFloat, PositiveFloat, PositiveInt


@dataclass(frozen=True)
class MemorySpec:
    """One device's DRAM (a set of channels), its timing in clock cycles, and its PIM units if any.

    Timing follows the DRAMsim3/NewtonSim .ini names (tRCD, tRP, tCCD_L, ...), in cycles of
    `clock_period_s` (tCK). A memory without PIM has `pim_multipliers_per_bank` = 0.
    """

    id: str
    name: str
    source: str
    #: The DRAM technology (and, for PIM parts, which PIM design).
    technology: Literal["hbm2", "hbm2e", "hbm3", "hbm2-pim", "gddr6-pim"]
    channels: PositiveInt
    banks_per_channel: PositiveInt
    #: Banks one all-bank activation opens at once; a GEMV tile opens all banks in
    #: banks_per_channel / banks_per_activation_group serial groups.
    banks_per_activation_group: PositiveInt
    row_bytes: PositiveInt
    bus_width_bits_per_channel: PositiveInt
    #: Data transfers per clock on the bus (2 for DDR).
    transfers_per_clock: PositiveFloat
    clock_period_s: PositiveFloat
    capacity_bytes: PositiveFloat
    t_rcd_cycles: PositiveFloat
    t_rp_cycles: PositiveFloat
    t_ras_cycles: PositiveFloat
    t_ccd_s_cycles: PositiveFloat
    t_ccd_l_cycles: PositiveFloat
    t_faw_cycles: PositiveFloat
    t_rfc_cycles: PositiveFloat
    t_refi_cycles: PositiveFloat
    #: Multipliers (MAC lanes) each bank's PIM unit applies per column access; 0 = no PIM.
    pim_multipliers_per_bank: NonNegativeFloat = 0.0
    #: Row buffers per bank: 2 lets PIM commands and normal reads/writes proceed at once (NeuPIMs).
    pim_row_buffers_per_bank: PositiveInt = 1
    #: Cycles to write one query chunk into the PIM global buffer before a GEMV (GWRITE).
    pim_global_write_cycles: NonNegativeFloat = 0.0
    #: Bytes per element the PIM multipliers take (2 for fp16/bf16).
    pim_element_bytes: PositiveFloat = 2.0
    notes: str = ""
    field_sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestLengthSpec:
    """Lengths of a serving trace: context (KV) tokens per request during decode, and mean prompt/output.

    The context length follows a log-normal law fitted to the published median and mean,
    truncated at the maximum: mu = ln(median), sigma = sqrt(2 ln(mean/median)).
    """

    id: str
    name: str
    source: str
    median_context_tokens: PositiveFloat
    mean_context_tokens: PositiveFloat
    max_context_tokens: PositiveFloat
    mean_prompt_tokens: PositiveFloat
    mean_output_tokens: PositiveFloat
    #: Medians of the prompt and of the output, where the sample's own are known: the serving engine's request
    #: sampler then draws each part through its own median and mean, not through the context law's spread.
    median_prompt_tokens: PositiveFloat | None = None
    median_output_tokens: PositiveFloat | None = None
    notes: str = ""
    field_sources: dict[str, str] = field(default_factory=dict)
