"""Integer codes of the categorical plan choices, so a plan field can be an array.

The vectorised engine takes these codes (any int array); the scenario layer maps names to them
with `*_CODES` and back with `code_name`.
"""

from __future__ import annotations

from enum import IntEnum


class SequenceParallel(IntEnum):
    """How the sequence dimension is split (Korthikanti 2022; Li et al. 2021; Jacobs et al. 2023)."""

    NONE = 0
    #: Megatron-SP: LayerNorm/dropout regions split along s inside the TP group (no extra GPUs).
    MEGATRON = 1
    #: Ring Self-Attention: s split over `sequence_parallel_degree` GPUs, K/V chunks go round a ring.
    RING = 2
    #: DeepSpeed-Ulysses: s split over the degree; all-to-all to heads before and after attention.
    ULYSSES = 3


class ContextParallelExchange(IntEnum):
    """How context-parallel ranks exchange keys and values (`dse.engines.training.context_parallel`)."""

    #: Megatron-Core `cp_comm_type="p2p"`: K/V blocks go round a ring, each send under an attention step.
    P2P = 0
    #: Llama 3 (Dubey et al. 2024, Section 3.3.2): all-gather K/V, then attention of the local queries.
    ALL_GATHER = 1


class Recompute(IntEnum):
    NONE = 0
    #: Recompute the attention core (QK^T, softmax, dropout, AV) in backward (Korthikanti 2022).
    SELECTIVE = 1
    #: Keep only each layer's input; recompute the whole layer forward in backward.
    FULL = 2


class Schedule(IntEnum):
    GPIPE = 0
    ONE_F_ONE_B = 1
    #: Interleaved 1F1B with `virtual_stages` model chunks per GPU (Narayanan et al. 2021).
    INTERLEAVED = 2


class Offload(IntEnum):
    NONE = 0
    #: SSDTrain's adaptive rule: offload the first layers of a stage while the drives keep up.
    ADAPTIVE = 1
    #: Offload every layer but the last of a stage; stalls when the drives cannot keep up.
    ALL = 2


class Zero3Runtime(IntEnum):
    """How a ZeRO-3 runtime gathers the sharded parameters (`dse.engines.training.zero3`)."""

    #: PyTorch FSDP: one flat parameter per wrap unit (a transformer layer), gathered with one
    #: all_gather_into_tensor, the next unit prefetched (Zhao et al., "PyTorch FSDP", VLDB 2023); gradients
    #: reduce-scattered in fp32, as torchtitan sets FSDP up (`zero3.FSDP_REDUCE_BYTES_PER_PARAM`); FSDP2's copy-out
    #: and reduce-scatter copy-in on the compute stream (`zero3.compute_stream_copies`).
    FSDP = 0
    #: DeepSpeed ZeRO-3 as of 2021 (the Megatron-LM SC'21 comparison): one list all_gather per
    #: partitioned tensor, prefetch limited by a 5e7-element bucket.
    DEEPSPEED_2021 = 1
    #: PyTorch FSDP as Composer 0.16 sets it up (llm-foundry's runs): backward_prefetch BACKWARD_POST, so each
    #: backward gather is issued only after the previous layer's gradients, and activation checkpointing inside
    #: each FSDP unit, so one backward gather serves the layer's recomputation and its backward. FSDP1's flat
    #: parameter: only its gradient concatenation runs on the compute stream (`zero3.compute_stream_copies`).
    FSDP_COMPOSER = 2
    #: FairScale FSDP of 2021 (metaseq's OPT-175B run): all-gathers and reduce-scatters on one process group, so in
    #: the backward a layer's gather queues behind the previous layer's reduce-scatter (fairscale PR #897 gave the
    #: reduce-scatter its own group only from late December 2021); checkpointed layers wrapped inside FSDP units.
    FAIRSCALE_2021 = 3


SEQUENCE_PARALLEL_CODES: dict[str, int] = {
    "none": SequenceParallel.NONE,
    "megatron": SequenceParallel.MEGATRON,
    "ring": SequenceParallel.RING,
    "ulysses": SequenceParallel.ULYSSES,
}
CONTEXT_PARALLEL_EXCHANGE_CODES: dict[str, int] = {
    "p2p": ContextParallelExchange.P2P,
    "all-gather": ContextParallelExchange.ALL_GATHER,
}
RECOMPUTE_CODES: dict[str, int] = {"none": Recompute.NONE, "selective": Recompute.SELECTIVE, "full": Recompute.FULL}
SCHEDULE_CODES: dict[str, int] = {
    "gpipe": Schedule.GPIPE,
    "1f1b": Schedule.ONE_F_ONE_B,
    "interleaved": Schedule.INTERLEAVED,
}
OFFLOAD_CODES: dict[str, int] = {"none": Offload.NONE, "adaptive": Offload.ADAPTIVE, "all": Offload.ALL}
ZERO3_RUNTIME_CODES: dict[str, int] = {
    "fsdp": Zero3Runtime.FSDP,
    "deepspeed-2021": Zero3Runtime.DEEPSPEED_2021,
    "fsdp-composer": Zero3Runtime.FSDP_COMPOSER,
    "fairscale-2021": Zero3Runtime.FAIRSCALE_2021,
}


def code_name(codes: dict[str, int], value: int) -> str:
    """The name of a code in one of the `*_CODES` tables."""
    for name, code in codes.items():
        if code == value:
            return name
    raise KeyError(value)
