"""The candidate plans of a search: every (GPUs, tp, sequence parallelism, pp, dp) layout times every
micro-batch, schedule (with its model chunks), ZeRO stage, recomputation, attention kernel
(unfused or FlashAttention) and offload mode.

The candidates form a grid of shape (layouts, micro-batches, schedules, ZeRO stages, recompute
modes, attention kernels, offload modes); a chunk of layouts is one broadcast call of the training engine, so the
quantities that depend on the layout only (parameters per GPU, link choice) are computed once per
layout, not once per plan. A plan's id is its flat index in the whole grid.

What is enumerated (and why some candidates are refused rather than not generated): the degrees
always multiply to the GPUs used (d = G / (t*n*p) by construction) and TP stays inside a node's
NVLink island (t divides the GPUs per node); for a mixture-of-experts model each layout comes once per
expert-parallel degree EP that divides both the experts and d*n*c (Megatron-Core draws the EP group from the
data- and context-parallel ranks; a dense model has EP 1 only), but everything else the engine checks is left to it,
so the search reports how many candidates each rule refused (heads not divisible by t, layers not
divisible by p*v, micro-batches not divisible, Ulysses above the heads, ZeRO-2/3 with pipelining, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from dse.engines.training.codes import Offload, Recompute, Schedule, SequenceParallel
from dse.engines.training.inputs import Array, PlanArrays

IntArray = NDArray[np.int64]

#: Inner axes of the grid, in order.
INNER_AXES = ("micro_batch", "schedule", "zero_stage", "recompute", "flash_attention", "offload")


def divisors(n: int) -> IntArray:
    """The divisors of a positive whole number, ascending (trial division up to sqrt(n): O(sqrt n) memory)."""
    n = int(n)
    small = np.arange(1, int(np.sqrt(n)) + 2, dtype=np.int64)
    small = small[(small * small <= n) & (n % small == 0)]
    return np.unique(np.concatenate([small, n // small]))


@dataclass(frozen=True)
class SearchSpace:
    """Which values each plan dimension may take (codes of `dse.engines.training.codes`).

    `node_counts`: the cluster sizes (in whole nodes, always the first nodes of the mapping) a plan
    may use; None means every power of two up to the cluster, the cluster itself and its halvings.
    `max_micro_batch_size` caps the micro-batch (every divisor of the global batch up to it);
    `max_virtual_stages` caps the interleaved schedule's model chunks per GPU.
    `powers_of_two_only` keeps only the micro-batches and chunk counts that are powers of two (a
    coarser, quicker grid: a subset of the full one, so every plan it finds is a real candidate).
    """

    sequence_parallel: tuple[int, ...] = tuple(int(k) for k in SequenceParallel)
    zero_stages: tuple[int, ...] = (0, 1, 2, 3)
    recompute: tuple[int, ...] = tuple(int(k) for k in Recompute)
    #: 0 = Megatron's unfused attention, 1 = FlashAttention (fused, no stored scores).
    flash_attention: tuple[int, ...] = (0, 1)
    schedules: tuple[int, ...] = tuple(int(k) for k in Schedule)
    offload: tuple[int, ...] = tuple(int(k) for k in Offload)
    max_virtual_stages: int = 8
    max_micro_batch_size: int | None = None
    node_counts: tuple[int, ...] | None = None
    #: Overlap the gradient reduction with the backward and, for ZeRO-1, the weights' all-gather with the next
    #: forward (`overlap_param_gather`): NVIDIA's recipes set the two together (NVIDIA/NeMo @
    #: 280786eda80616912c669f38009ebaa469631328 nemo/collections/llm/recipes/llama2_7b.py, trainer:
    #: DistributedDataParallelConfig(overlap_grad_reduce=True, overlap_param_gather=True)).
    overlap_grad_reduce: bool = True
    #: Megatron-LM `--tp-comm-overlap`: TP collectives tiled under the adjacent GEMMs, for every plan.
    tp_comm_overlap: bool = False
    #: How ZeRO-3 plans gather (`codes.Zero3Runtime`), for every plan: the software stack, not a choice.
    zero3_runtime: int = 0
    powers_of_two_only: bool = False
    #: Context-parallel K/V exchanges tried (`codes.ContextParallelExchange`); each adds every CP degree >= 2
    #: that divides the GPUs left beside TP and PP, with no sequence parallelism or Megatron-SP. Empty: no CP.
    context_parallel_exchanges: tuple[int, ...] = ()
    #: Also try each pipeline of 3+ stages with its first and last stages lighter (`uneven_stage_layers`).
    uneven_stages: bool = False
    #: Expert-parallel degrees tried for an MoE model (None: every divisor of the experts); a dense model has 1.
    expert_parallel: tuple[int, ...] | None = None
    #: EP all-to-alls under another micro-batch's compute (DualPipe-style), for every plan: the stack, not a choice.
    expert_comm_overlap: bool = False

    def nodes_used(self, nodes: int) -> IntArray:
        if self.node_counts is not None:
            chosen = np.asarray(sorted(set(self.node_counts)), dtype=np.int64)
            return chosen[(chosen >= 1) & (chosen <= nodes)]
        powers = 2 ** np.arange(0, int(np.log2(nodes)) + 1, dtype=np.int64)
        halvings = nodes // 2 ** np.arange(0, int(np.log2(nodes)) + 1, dtype=np.int64)
        halvings = halvings[nodes % np.maximum(halvings, 1) == 0]
        return np.unique(np.concatenate([powers, halvings[halvings >= 1], [nodes]]))


@dataclass(frozen=True)
class Layouts:
    """One row per (GPUs used, t, sequence-parallel variant, n, p, d) layout; whole numbers as floats."""

    gpus: Array
    nodes: Array
    tensor_parallel: Array
    sequence_parallel: Array
    sequence_parallel_degree: Array
    pipeline_parallel: Array
    data_parallel: Array
    #: Context-parallel degree and exchange; layers of the first and last stage (0: even).
    context_parallel: Array
    context_parallel_exchange: Array
    first_stage_layers: Array
    last_stage_layers: Array
    #: EP: 1 for a dense model.
    expert_parallel: Array

    def __len__(self) -> int:
        return int(self.gpus.shape[0])

    def take(self, index: IntArray | slice) -> Layouts:
        return Layouts(**{k: getattr(self, k)[index] for k in self.__dataclass_fields__})


@dataclass(frozen=True)
class InnerAxes:
    """The values of the inner grid axes, shared by every layout."""

    micro_batch_size: Array
    pipeline_schedule: Array
    virtual_stages: Array
    zero_stage: Array
    recompute: Array
    flash_attention: Array
    activation_offload: Array
    shape: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        shape = (
            self.micro_batch_size.size,
            self.pipeline_schedule.size,
            self.zero_stage.size,
            self.recompute.size,
            self.flash_attention.size,
            self.activation_offload.size,
        )
        object.__setattr__(self, "shape", shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


def uneven_stage_layers(*, num_layers: int, stages: IntArray) -> IntArray:
    """Layers of the first (= last) stage when the other stages take ceil((L+2)/p) each and the first and last
    split the rest (Llama 3 405B: 126 layers on 16 stages, 7 / 8 x 14 / 7); 0 where that is not lighter than the
    middle stages, not whole or not at least one layer (then no uneven candidate)."""
    p = np.asarray(stages, dtype=np.int64)
    middle = -(-(num_layers + 2) // np.maximum(p, 1))
    rest = num_layers - (p - 2) * middle
    ends = rest // 2
    ok = (p >= 3) & (rest % 2 == 0) & (ends >= 1) & (ends < middle)
    return np.asarray(np.where(ok, ends, 0), dtype=np.int64)


def enumerate_layouts(
    *,
    space: SearchSpace,
    nodes: int,
    gpus_per_node: int,
    sequence_parallel: tuple[int, ...],
    num_layers: int = 0,
    num_experts: int = 0,
) -> Layouts:
    """Every (G, t, variant, n, p, d) with d*t*n*p = G, t dividing the GPUs per node, n >= 2 exactly
    for Ring and Ulysses; with context-parallel exchanges in the space also (G, t, none / Megatron-SP, c, p, d)
    with d*t*c*p = G, c >= 2, per exchange; with uneven stages each layout of 3+ stages once more with its
    first and last stages lighter (`uneven_stage_layers` of `num_layers`); with `num_experts` > 0, each once
    per EP dividing the experts and d*n*c. A loop over the GPU counts only (a handful); each is one meshgrid."""
    variants = np.asarray(sequence_parallel, dtype=np.int64)
    context_variant = (variants == SequenceParallel.RING) | (variants == SequenceParallel.ULYSSES)
    plain = variants[~context_variant]
    exchanges = np.asarray(space.context_parallel_exchanges, dtype=np.int64)
    rows: list[NDArray[np.int64]] = []
    for nodes_used in space.nodes_used(nodes):
        G = int(nodes_used) * gpus_per_node
        all_divisors = divisors(G)
        tp = np.intersect1d(divisors(gpus_per_node), all_divisors)
        t, k, n, p = np.meshgrid(tp, np.arange(variants.size), all_divisors, all_divisors, indexing="ij")
        ring_or_ulysses = context_variant[k]
        keep = (G % (t * n * p) == 0) & (ring_or_ulysses == (n >= 2))
        t, k, n, p = t[keep], k[keep], n[keep], p[keep]
        extra = [np.ones_like(t), np.zeros_like(t), np.zeros_like(t), np.zeros_like(t)]  # CP 1, even stages
        rows.append(
            np.stack([np.full_like(t, G), np.full_like(t, nodes_used), t, variants[k], n, p, G // (t * n * p), *extra])
        )
        if exchanges.size and plain.size:
            t, k, c, p, e = np.meshgrid(
                tp, np.arange(plain.size), all_divisors, all_divisors, np.arange(exchanges.size), indexing="ij"
            )
            keep = (G % (t * c * p) == 0) & (c >= 2)
            t, k, c, p, e = t[keep], k[keep], c[keep], p[keep], e[keep]
            cp_columns = [c, exchanges[e], np.zeros_like(t), np.zeros_like(t)]  # CP c, even stages
            rows.append(
                np.stack(
                    [
                        np.full_like(t, G),
                        np.full_like(t, nodes_used),
                        t,
                        plain[k],
                        1 + 0 * t,
                        p,
                        G // (t * c * p),
                        *cp_columns,
                    ]
                )
            )
    table = np.concatenate(rows, axis=1) if rows else np.zeros((11, 0), dtype=np.int64)
    if space.uneven_stages and num_layers > 0 and table.shape[1]:
        ends = uneven_stage_layers(num_layers=num_layers, stages=table[5])
        uneven = table[:, ends > 0].copy()
        uneven[9] = uneven[10] = ends[ends > 0]
        table = np.concatenate([table, uneven], axis=1)
    return Layouts(*_with_expert_parallel(table.astype(np.float64), space, num_experts))


def expert_parallel_choices(space: SearchSpace, num_experts: int) -> IntArray:
    """The EP degrees tried: 1 for a dense model; the divisors of the experts (those the space allows)."""
    if num_experts <= 0:
        return np.ones(1, dtype=np.int64)
    choices = divisors(num_experts)
    if space.expert_parallel is not None:
        choices = choices[np.isin(choices, np.asarray(space.expert_parallel, dtype=np.int64))]
    return choices


def _with_expert_parallel(table: Array, space: SearchSpace, num_experts: int) -> Array:
    """The layout rows (G, nodes, t, variant, n, p, d, c, exchange, first, last) with an EP row: each MoE layout
    once per EP that divides d*n*c (n is 1 for Megatron-SP and none, c is 1 without context parallelism)."""
    choices = expert_parallel_choices(space, num_experts).astype(np.float64)
    if num_experts <= 0:
        return np.vstack([table, np.ones((1, table.shape[1]))])
    repeated = np.repeat(table, choices.size, axis=1)
    ep = np.tile(choices, table.shape[1])
    keep = np.mod(repeated[6] * repeated[4] * repeated[7], ep) == 0
    return np.vstack([repeated[:, keep], ep[keep][None, :]])


def inner_axes(*, space: SearchSpace, global_batch_size: int, num_layers: int, has_ssd: bool) -> InnerAxes:
    """Micro-batches (divisors of the batch), schedules with their chunk counts, ZeRO, recompute, offload."""
    micro = divisors(global_batch_size)
    if space.max_micro_batch_size is not None:
        micro = micro[micro <= space.max_micro_batch_size]
    if space.powers_of_two_only:
        micro = micro[_is_power_of_two(micro)]
    schedules: list[tuple[int, int]] = [(s, 1) for s in space.schedules if s != Schedule.INTERLEAVED]
    if Schedule.INTERLEAVED in space.schedules:
        chunks = np.arange(2, max(space.max_virtual_stages, 1) + 1)
        chunks = chunks[num_layers % chunks == 0]  # p*v divides the layers only if v does
        if space.powers_of_two_only:
            chunks = chunks[_is_power_of_two(chunks)]
        schedules += [(int(Schedule.INTERLEAVED), int(v)) for v in chunks]
    offload = space.offload if has_ssd else tuple(o for o in space.offload if o == Offload.NONE) or (0,)
    sched = np.asarray(schedules, dtype=np.float64).reshape(-1, 2)
    return InnerAxes(
        micro_batch_size=micro.astype(np.float64),
        pipeline_schedule=sched[:, 0].copy(),
        virtual_stages=sched[:, 1].copy(),
        zero_stage=np.asarray(space.zero_stages, dtype=np.float64),
        recompute=np.asarray(space.recompute, dtype=np.float64),
        flash_attention=np.asarray(space.flash_attention, dtype=np.float64),
        activation_offload=np.asarray(offload, dtype=np.float64),
    )


def _is_power_of_two(values: IntArray) -> NDArray[np.bool_]:
    return np.asarray((values > 0) & ((values & (values - 1)) == 0))


def grid_plans(
    *,
    layouts: Layouts,
    inner: InnerAxes,
    global_batch_size: float,
    sequence_length: float,
    overlap: bool,
    tp_comm_overlap: bool = False,
    zero3_runtime: int = 0,
    expert_comm_overlap: bool = False,
) -> PlanArrays:
    """The plans of a chunk of layouts as broadcastable arrays of shape (layouts, *inner.shape)."""

    def axis(values: Array, position: int) -> Array:
        shape = [1] * (1 + len(INNER_AXES))
        shape[position] = values.size
        return values.reshape(shape)

    def uniform_or_axis(values: Array) -> Array | float:
        return float(values[0]) if values.size and bool(np.all(values == values[0])) else axis(values, 0)

    return PlanArrays(
        global_batch_size=float(global_batch_size),
        micro_batch_size=axis(inner.micro_batch_size, 1),
        sequence_length=float(sequence_length),
        data_parallel=axis(layouts.data_parallel, 0),
        tensor_parallel=axis(layouts.tensor_parallel, 0),
        pipeline_parallel=axis(layouts.pipeline_parallel, 0),
        sequence_parallel=axis(layouts.sequence_parallel, 0),
        sequence_parallel_degree=axis(layouts.sequence_parallel_degree, 0),
        zero_stage=axis(inner.zero_stage, 3),
        recompute=axis(inner.recompute, 4),
        pipeline_schedule=axis(inner.pipeline_schedule, 2),
        virtual_stages=axis(inner.virtual_stages, 2),
        flash_attention=axis(inner.flash_attention, 5),
        activation_offload=axis(inner.activation_offload, 6),
        overlap_grad_reduce=1.0 if overlap else 0.0,
        overlap_param_gather=1.0 if overlap else 0.0,
        tp_comm_overlap=1.0 if tp_comm_overlap else 0.0,
        zero3_runtime=float(zero3_runtime),
        # one value for the whole chunk (no CP, even stages: the default space) stays a scalar the engine
        # never broadcasts or selects over the grid
        context_parallel=uniform_or_axis(layouts.context_parallel),
        context_parallel_exchange=uniform_or_axis(layouts.context_parallel_exchange),
        first_stage_layers=uniform_or_axis(layouts.first_stage_layers),
        last_stage_layers=uniform_or_axis(layouts.last_stage_layers),
        # a scalar for a dense model: the engine's EP checks and pricing then cost nothing per plan
        expert_parallel=uniform_or_axis(layouts.expert_parallel),
        expert_comm_overlap=1.0 if expert_comm_overlap else 0.0,
    )


def decode_plans(
    *,
    plan_ids: IntArray,
    layouts: Layouts,
    inner: InnerAxes,
    global_batch_size: float,
    sequence_length: float,
    overlap: bool,
    tp_comm_overlap: bool = False,
    zero3_runtime: int = 0,
    expert_comm_overlap: bool = False,
) -> tuple[PlanArrays, Array]:
    """Flat plans (and their GPUs used / nodes used) for grid ids."""
    layout_index, inner_index = np.divmod(plan_ids, inner.size)
    b, sc, z, r, f, o = np.unravel_index(inner_index, inner.shape)
    plan = PlanArrays(
        global_batch_size=np.full(plan_ids.shape, float(global_batch_size)),
        micro_batch_size=inner.micro_batch_size[b],
        sequence_length=np.full(plan_ids.shape, float(sequence_length)),
        data_parallel=layouts.data_parallel[layout_index],
        tensor_parallel=layouts.tensor_parallel[layout_index],
        pipeline_parallel=layouts.pipeline_parallel[layout_index],
        sequence_parallel=layouts.sequence_parallel[layout_index],
        sequence_parallel_degree=layouts.sequence_parallel_degree[layout_index],
        zero_stage=inner.zero_stage[z],
        recompute=inner.recompute[r],
        pipeline_schedule=inner.pipeline_schedule[sc],
        virtual_stages=inner.virtual_stages[sc],
        flash_attention=inner.flash_attention[f],
        activation_offload=inner.activation_offload[o],
        overlap_grad_reduce=np.full(plan_ids.shape, 1.0 if overlap else 0.0),
        overlap_param_gather=np.full(plan_ids.shape, 1.0 if overlap else 0.0),
        tp_comm_overlap=np.full(plan_ids.shape, 1.0 if tp_comm_overlap else 0.0),
        zero3_runtime=np.full(plan_ids.shape, float(zero3_runtime)),
        context_parallel=layouts.context_parallel[layout_index],
        context_parallel_exchange=layouts.context_parallel_exchange[layout_index],
        first_stage_layers=layouts.first_stage_layers[layout_index],
        last_stage_layers=layouts.last_stage_layers[layout_index],
        expert_parallel=layouts.expert_parallel[layout_index],
        expert_load_imbalance=np.ones(plan_ids.shape),  # balanced routing: the search's assumption
        expert_capacity_factor=np.zeros(plan_ids.shape),
        expert_comm_overlap=np.full(plan_ids.shape, 1.0 if expert_comm_overlap else 0.0),
    )
    return plan, layouts.nodes[layout_index]


def count_candidates(
    *,
    space: SearchSpace,
    nodes: int,
    gpus_per_node: int,
    global_batch_size: int,
    num_layers: int,
    has_ssd: bool,
    num_experts: int = 0,
) -> tuple[int, int]:
    """(layouts, inner grid size): the candidates are their product. Nothing of the grid is
    allocated; the layouts are counted per GPU count from divisor counts (a handful of small arrays), or, with
    context parallelism or uneven stages in the space or an MoE model (once per EP), enumerated (a table of
    layouts, a few thousand rows at most, not of plans)."""
    inner = inner_axes(space=space, global_batch_size=global_batch_size, num_layers=num_layers, has_ssd=has_ssd)
    if space.context_parallel_exchanges or space.uneven_stages or num_experts > 0:
        table = enumerate_layouts(
            space=space,
            nodes=nodes,
            gpus_per_node=gpus_per_node,
            sequence_parallel=space.sequence_parallel,
            num_layers=num_layers,
            num_experts=num_experts,
        )
        return len(table), inner.size
    kinds = np.asarray(space.sequence_parallel, dtype=np.int64)
    context = int(np.count_nonzero((kinds == SequenceParallel.RING) | (kinds == SequenceParallel.ULYSSES)))
    plain = kinds.size - context
    layouts = 0
    for nodes_used in space.nodes_used(nodes):
        G = int(nodes_used) * gpus_per_node
        for t in np.intersect1d(divisors(gpus_per_node), divisors(G)):
            rest = divisors(G // int(t))  # n * p must divide G / t
            pairs = int(sum(divisors(int(G // int(t)) // int(n)).size for n in rest))  # (n, p) with n*p | G/t
            with_n1 = int(divisors(G // int(t)).size)  # n = 1: p divides G / t
            layouts += plain * with_n1 + context * (pairs - with_n1)
    return layouts, inner.size
