"""Why a plan cannot run: a bitmask of reason codes per plan, and their descriptions.

Each reason names the plan field (`PlanArrays` / scenario input name) a user should change.
Reasons are structural (the plan cannot be built); `OUT_OF_MEMORY` is separate from them:
such a plan is well formed but does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dse.engines.training.codes import Offload, Schedule, SequenceParallel, Zero3Runtime
from dse.engines.training.inputs import ClusterArrays, ModelArrays, PlanArrays, as_array
from dse.engines.training.stages import stage_layers


@dataclass(frozen=True)
class Reason:
    bit: int
    name: str
    field: str
    message: str


_REASON_LIST: tuple[Reason, ...] = (
    Reason(1 << 0, "NOT_WHOLE", "plan", "batch sizes, sequence length and degrees must be whole numbers >= 1"),
    Reason(
        1 << 1,
        "UNKNOWN_CODE",
        "plan",
        "unknown code for sequence_parallel, recompute, schedule, offload, ZeRO or ZeRO-3 runtime",
    ),
    Reason(
        1 << 2,
        "GPU_COUNT",
        "data_parallel",
        "data_parallel x tensor_parallel x pipeline_parallel x sequence_parallel_degree x context_parallel must "
        "equal the cluster's GPUs",
    ),
    Reason(1 << 3, "TP_HEADS", "tensor_parallel", "tensor_parallel must divide the attention heads"),
    Reason(1 << 4, "TP_KV_HEADS", "tensor_parallel", "tensor_parallel must divide the key/value heads"),
    Reason(1 << 5, "TP_FFN", "tensor_parallel", "tensor_parallel must divide the FFN width"),
    Reason(
        1 << 6,
        "BATCH",
        "micro_batch_size",
        "micro_batch_size x data_parallel must divide global_batch_size",
    ),
    Reason(
        1 << 7,
        "LAYERS",
        "pipeline_parallel",
        "pipeline_parallel x virtual_stages must divide the layers",
    ),
    Reason(
        1 << 8,
        "SP_DEGREE_KIND",
        "sequence_parallel_degree",
        "sequence_parallel_degree must be 1 without Ring or Ulysses (Megatron-SP reuses the TP group)",
    ),
    Reason(
        1 << 9,
        "SEQUENCE_SPLIT",
        "sequence_length_tokens",
        "the sequence length must divide evenly over the sequence-parallel ranks",
    ),
    Reason(
        1 << 10,
        "ULYSSES_ABOVE_HEADS",
        "sequence_parallel_degree",
        "the Ulysses degree exceeds the attention heads per tensor-parallel rank",
    ),
    Reason(
        1 << 11,
        "ULYSSES_HEADS",
        "sequence_parallel_degree",
        "the Ulysses degree must divide the (key/value) heads per tensor-parallel rank",
    ),
    Reason(
        1 << 12,
        "VIRTUAL_STAGES",
        "virtual_stages",
        "virtual_stages above 1 needs the interleaved schedule",
    ),
    Reason(
        1 << 13,
        "INTERLEAVED",
        "pipeline_schedule",
        "the interleaved schedule needs pipeline_parallel > 1 and micro-batches per replica divisible by it",
    ),
    Reason(
        1 << 14,
        "ZERO_WITH_PIPELINE",
        "zero_stage",
        "ZeRO stages 2 and 3 cannot be combined with pipeline parallelism (DeepSpeed refuses it)",
    ),
    Reason(1 << 15, "OFFLOAD_WITHOUT_SSD", "activation_offload", "activation offload needs SSDs in the nodes"),
    # Bits above OUT_OF_MEMORY's (1 << 16): context parallelism and uneven pipeline stages.
    Reason(
        1 << 17,
        "CP_WITH_RING_ULYSSES",
        "context_parallel",
        "context_parallel above 1 combines with none or Megatron-SP, not with Ring or Ulysses",
    ),
    Reason(
        1 << 18,
        "CP_SEQUENCE_SPLIT",
        "context_parallel",
        "the sequence must split into 2 x context_parallel equal chunks (and each rank's tokens over "
        "tensor_parallel with Megatron-SP)",
    ),
    Reason(
        1 << 19,
        "STAGE_LAYERS",
        "first_stage_layers",
        "first_stage_layers / last_stage_layers need pipeline_parallel >= 2 and must leave the middle stages "
        "an equal whole number of layers (divisible by virtual_stages), at least 1 each",
    ),
    # Mixture of experts (bits above OUT_OF_MEMORY's, kept clear of other new reasons)
    Reason(1 << 24, "EP_DENSE", "expert_parallel", "expert_parallel must be 1 for a dense model (it has no experts)"),
    Reason(1 << 25, "EP_EXPERTS", "expert_parallel", "expert_parallel must divide the routed experts"),
    Reason(
        1 << 26,
        "EP_LAYOUT",
        "expert_parallel",
        "expert_parallel must be a whole number dividing data_parallel x context_parallel (x sequence_parallel_degree "
        "with Ring or Ulysses; Megatron-Core draws the EP group from the data- and context-parallel ranks)",
    ),
    Reason(
        1 << 27,
        "EXPERT_LOAD",
        "expert_load_imbalance",
        "expert_load_imbalance must be >= 1, expert_capacity_factor 0 (dropless) or > 0, expert_comm_overlap, "
        "expert_dispatch_dedup and expert_dispatch_fp8 0 or 1, expert_node_limit 0 (no limit) or a whole number",
    ),
    Reason(
        1 << 30,
        "DUALPIPE",
        "dualpipe",
        "dualpipe must be 0 or 1, and DualPipe needs the 1F1B schedule with an even pipeline_parallel and an even "
        "number of micro-batches",
    ),
)

#: Every structural reason by name.
REASONS: dict[str, Reason] = {r.name: r for r in _REASON_LIST}
#: Not structural: the plan is well formed but its peak memory exceeds the GPU's.
OUT_OF_MEMORY = Reason(1 << 16, "OUT_OF_MEMORY", "plan", "the plan's peak memory per GPU exceeds the GPU memory")


def describe_reasons(code: int) -> list[Reason]:
    """The reasons set in one plan's bitmask, in order of the table."""
    return [r for r in (*_REASON_LIST, OUT_OF_MEMORY) if int(code) & r.bit]


def _whole(x: NDArray[np.float64]) -> NDArray[np.bool_]:
    return np.asarray((x >= 1.0) & (np.floor(x) == x))


def _divides(divisor: NDArray[np.float64], value: NDArray[np.float64]) -> NDArray[np.bool_]:
    safe = np.maximum(divisor, 1.0)
    return np.asarray(np.mod(value, safe) == 0.0)


def _expert_conditions(
    model: ModelArrays, plan: PlanArrays, data_and_context: NDArray[np.float64]
) -> list[tuple[str, NDArray[np.bool_]]]:
    """EP: 1 for dense models; for MoE a whole divisor of the experts and of DP x CP (`experts`)."""
    ep, experts = as_array(plan.expert_parallel), as_array(model.num_experts)
    load, capacity = as_array(plan.expert_load_imbalance), as_array(plan.expert_capacity_factor)
    overlap, node_limit = as_array(plan.expert_comm_overlap), as_array(plan.expert_node_limit)
    moe = experts > 0
    conditions = [
        ("EP_DENSE", np.asarray(~moe & (ep != 1.0))),
        ("EP_EXPERTS", np.asarray(moe & _whole(ep) & ~_divides(ep, experts))),
        ("EP_LAYOUT", np.asarray(~_whole(ep) | ~_divides(ep, data_and_context))),
        ("EXPERT_LOAD", np.asarray(~(load >= 1.0) | ~(capacity >= 0.0) | ~np.isin(overlap, (0.0, 1.0)))),
        (
            "EXPERT_LOAD",
            np.asarray(
                ~np.isin(as_array(plan.expert_dispatch_dedup), (0.0, 1.0))
                | ~np.isin(as_array(plan.expert_dispatch_fp8), (0.0, 1.0))
                | ~((node_limit == 0.0) | _whole(node_limit))
            ),
        ),
    ]
    # The checks are at most layout-shaped (EP, d, n): one that holds nowhere (EP 1 on a dense model, the
    # usual case) is dropped rather than written over every plan of a search chunk.
    return [(name, c) for name, c in conditions if bool(np.any(c))]


def plan_reasons(*, model: ModelArrays, cluster: ClusterArrays, plan: PlanArrays) -> NDArray[np.int64]:
    """The structural reason bitmask of every plan (0 where the plan can run), broadcast over the inputs (a
    read-only view)."""
    B, b, s = as_array(plan.global_batch_size), as_array(plan.micro_batch_size), as_array(plan.sequence_length)
    d, t, p = as_array(plan.data_parallel), as_array(plan.tensor_parallel), as_array(plan.pipeline_parallel)
    variant, n = as_array(plan.sequence_parallel), as_array(plan.sequence_parallel_degree)
    zero, recompute = as_array(plan.zero_stage), as_array(plan.recompute)
    schedule, v, offload = (
        as_array(plan.pipeline_schedule),
        as_array(plan.virtual_stages),
        as_array(plan.activation_offload),
    )
    heads, kv_heads = as_array(model.num_heads), as_array(model.num_kv_heads)
    gpus = as_array(cluster.nodes) * as_array(cluster.gpus_per_node)

    def code_ok(x: NDArray[np.float64], top: int) -> NDArray[np.bool_]:
        return np.asarray((x >= 0) & (x <= top) & (np.floor(x) == x))

    cp = as_array(plan.context_parallel)
    first_layers, last_layers = as_array(plan.first_stage_layers), as_array(plan.last_stage_layers)
    uneven = (first_layers != 0.0) | (last_layers != 0.0)
    num_layers = as_array(model.num_layers)
    stages_ok: NDArray[np.bool_] = np.ones((), dtype=bool)
    if np.any(uneven):  # a search without uneven stages skips their rule
        first, middle, last = stage_layers(
            num_layers=num_layers, pipeline_parallel=p, first_stage_layers=first_layers, last_stage_layers=last_layers
        )
        stages_ok = (
            (p >= 2)
            & (first_layers >= 0)
            & (last_layers >= 0)
            & _whole(first)
            & _whole(last)
            & np.where(p > 2, _whole(middle) & _divides(v, middle), first + last == num_layers)
        )
    ring_or_ulysses = (variant == SequenceParallel.RING) | (variant == SequenceParallel.ULYSSES)
    ulysses = variant == SequenceParallel.ULYSSES
    heads_per_tp = heads / np.maximum(t, 1.0)
    kv_per_tp = kv_heads / np.maximum(t, 1.0)
    micro_batches = B / np.maximum(b * d, 1.0)
    interleaved = schedule == Schedule.INTERLEAVED
    sequence_ranks = np.where(variant == SequenceParallel.MEGATRON, t, n)
    offload_on = offload != Offload.NONE
    no_ssd = (as_array(cluster.ssd_write_bandwidth_per_gpu_bytes_per_s) <= 0) | (
        as_array(cluster.ssd_read_bandwidth_per_gpu_bytes_per_s) <= 0
    )

    conditions: list[tuple[str, NDArray[np.bool_]]] = [
        (
            "NOT_WHOLE",
            ~(
                _whole(B)
                & _whole(b)
                & _whole(s)
                & _whole(d)
                & _whole(t)
                & _whole(p)
                & _whole(n)
                & _whole(v)
                & _whole(cp)
            ),
        ),
        (
            "UNKNOWN_CODE",
            ~(
                code_ok(variant, 3)
                & code_ok(recompute, 2)
                & code_ok(schedule, 2)
                & code_ok(offload, 2)
                & code_ok(zero, 3)
                & code_ok(as_array(plan.flash_attention), 1)
                & code_ok(as_array(plan.zero3_runtime), max(Zero3Runtime))
                & code_ok(as_array(plan.tp_comm_overlap), 1)
                & code_ok(as_array(plan.context_parallel_exchange), 1)
            ),
        ),
        ("GPU_COUNT", d * t * p * n * cp != gpus),
        ("TP_HEADS", ~_divides(t, heads)),
        ("TP_KV_HEADS", ~_divides(t, kv_heads)),
        ("TP_FFN", ~_divides(t, as_array(model.ffn_hidden_size))),
        ("BATCH", ~_divides(b * d, B)),
        ("LAYERS", ~uneven & ~_divides(p * v, num_layers)),
        ("SP_DEGREE_KIND", ~ring_or_ulysses & (n != 1.0)),
        ("SEQUENCE_SPLIT", ~_divides(sequence_ranks, s)),
        ("ULYSSES_ABOVE_HEADS", ulysses & (n > heads_per_tp)),
        ("ULYSSES_HEADS", ulysses & (n <= heads_per_tp) & ~(_divides(n, heads_per_tp) & _divides(n, kv_per_tp))),
        ("VIRTUAL_STAGES", ~interleaved & (v != 1.0)),
        ("INTERLEAVED", interleaved & ((p < 2) | ~_divides(p, micro_batches))),
        ("ZERO_WITH_PIPELINE", (zero >= 2) & (p > 1)),
        ("OFFLOAD_WITHOUT_SSD", offload_on & no_ssd),
        ("CP_WITH_RING_ULYSSES", (cp > 1) & ring_or_ulysses),
        (
            "CP_SEQUENCE_SPLIT",
            (cp > 1)
            & ~(_divides(2.0 * cp, s) & _divides(cp * np.where(variant == SequenceParallel.MEGATRON, t, 1.0), s)),
        ),
        ("STAGE_LAYERS", uneven & ~stages_ok),
        *_expert_conditions(model, plan, d * cp * np.where(ring_or_ulysses, n, 1.0)),
    ]
    dualpipe = as_array(plan.dualpipe)
    if bool(np.any(dualpipe != 0.0)):  # checked only where a plan asks for it (none in a plan search)
        odd = (np.mod(p, 2.0) != 0.0) | (np.mod(micro_batches, 2.0) != 0.0)
        wrong = ~np.isin(dualpipe, (0.0, 1.0)) | ((dualpipe == 1.0) & ((schedule != Schedule.ONE_F_ONE_B) | odd))
        conditions.append(("DUALPIPE", np.asarray(wrong)))
    # Most conditions are layout-shaped and false (no pass over the whole grid); the others are OR-ed smallest
    # first, each at its own shape, so the codes reach the grid's shape only with the last ones.
    held = sorted(((REASONS[name].bit, c) for name, c in conditions if np.any(c)), key=lambda bc: bc[1].size)
    code = np.zeros((), dtype=np.int64)
    for bit, condition in held:  # a loop over the reasons, not over plans
        code = code | np.where(condition, np.int64(bit), np.int64(0))
    return np.broadcast_to(code, np.broadcast_shapes(*(c.shape for _, c in conditions)))
