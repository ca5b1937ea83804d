"""The fastest training plans that fit: enumerate, evaluate in broadcast chunks, rank, Pareto front.

    search_plans(model=ModelArrays, cluster=ClusterArrays, global_batch_size=B, sequence_length=s)

1. The candidate grid (`space`): layouts x micro-batches x schedules x ZeRO x recompute x attention
   kernel x offload.
2. Each chunk of layouts is one `evaluate_plans` call on the broadcast grid (per node order when
   the cluster has a measured bandwidth matrix: memory does not depend on the mapping, time does,
   and each plan keeps its fastest order). Memory comes first and only the plans that fit are timed
   (`fitting_only`; the other orders time those same plans). Refusals are counted per reason bit.
3. Plans that fit are ranked by iteration time (then memory); the top k and the Pareto front (iteration time,
   memory per GPU, GPUs used; all minimised) are evaluated again as flat plans for their breakdowns.
4. With a measured matrix, a seeded hill-climb of node swaps refines the mapping of the best plans. Several
   node orders are judged in one call where they can be (the orders' matrices stacked, each plan pointed at
   its own by `ClusterArrays.node_order`): the pooled plans on the other orders, a window of proposals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dse.engines.plan_search.mapping import candidate_orders, permuted, swap, swap_pair
from dse.engines.plan_search.space import (
    InnerAxes,
    IntArray,
    Layouts,
    SearchSpace,
    decode_plans,
    enumerate_layouts,
    grid_plans,
    inner_axes,
)
from dse.engines.training.codes import Schedule, SequenceParallel
from dse.engines.training.evaluate import PlanEvaluation, evaluate_plans
from dse.engines.training.inputs import Array, ClusterArrays, ModelArrays, PlanArrays, as_array
from dse.engines.training.validity import OUT_OF_MEMORY, REASONS

#: Plans per engine call: large enough that NumPy's per-call overhead vanishes, small enough
#: that the ~50 result arrays of a chunk stay in cache-friendly, bounded memory (~100 MB).
CHUNK_PLANS = 1 << 17
#: What the grid calls keep per plan (ranking, the front, the sample); the listed plans are evaluated again in full.
GRID_OUTPUTS = ("iteration_time_s", "memory_total_bytes")


class SearchStopped(Exception):
    """`should_stop()` answered True between two chunks: the search gave up (deadline or cancellation)."""


def _check(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise SearchStopped()


@dataclass(frozen=True)
class RankedPlans:
    """Flat plans with their full evaluation (on the node order each runs fastest with)."""

    plan_ids: IntArray
    plans: PlanArrays
    nodes: Array
    gpus: Array
    node_order_index: IntArray
    evaluation: PlanEvaluation

    def __len__(self) -> int:
        return int(self.plan_ids.size)


@dataclass(frozen=True)
class SearchResult:
    #: Grid points the engine judged (valid or not).
    candidates: int
    #: Candidates with no structural reason against them.
    valid: int
    #: Valid candidates whose peak memory fits the GPU.
    fitting: int
    #: Candidates refused for each reason (structural and OUT_OF_MEMORY); a plan counts once per reason it has.
    refusals: dict[str, int]
    #: The same by the first reason in table order only: they add up to candidates - fitting.
    first_refusals: dict[str, int]
    top: RankedPlans
    pareto: RankedPlans
    #: Node orders tried (physical node of each logical node); one order without a measured matrix.
    node_orders: tuple[IntArray, ...]
    #: Sets of plans judged on one node order each: one `evaluate_plans` call each when judged one order at a
    #: time (the grid's chunks); the pooled plans' other orders and hill-climb proposals share calls.
    engine_calls: int
    #: A seeded sample of the fitting plans (time, memory, GPUs) to draw the cloud behind the front.
    sample_time_s: Array
    sample_memory_bytes: Array
    sample_gpus: Array


def _reason_names() -> list[tuple[str, int]]:
    return [(r.name, r.bit) for r in REASONS.values()] + [(OUT_OF_MEMORY.name, OUT_OF_MEMORY.bit)]


def pareto_mask(time: Array, memory: Array, gpus: Array) -> NDArray[np.bool_]:
    """True for the points no other point beats on all of (time, memory, GPUs) (minimised; exact
    duplicates keep their first). A loop over the distinct GPU counts (a handful), not over points."""
    order = np.lexsort((gpus, memory, time))
    m_sorted, g_sorted = memory[order], gpus[order]
    front_sorted = np.ones(order.size, dtype=bool)
    for level in np.unique(g_sorted):
        # Everything at or below this GPU count, in time order: a point at this level is dominated
        # when an earlier point (no slower) already had no more memory.
        eligible = g_sorted <= level
        best_before = np.minimum.accumulate(np.where(eligible, m_sorted, np.inf))
        best_before = np.concatenate([[np.inf], best_before[:-1]])
        front_sorted &= ~((g_sorted == level) & (best_before <= m_sorted))
    front = np.zeros(order.size, dtype=bool)
    front[order] = front_sorted
    return front


def search_plans(
    *,
    model: ModelArrays,
    cluster: ClusterArrays,
    global_batch_size: int,
    sequence_length: int,
    space: SearchSpace | None = None,
    top_k: int = 10,
    search_mapping: bool = True,
    mapping_steps: int = 48,
    seed: int = 0,
    chunk_plans: int = CHUNK_PLANS,
    sample_size: int = 2000,
    orders_on_pool_only: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> SearchResult:
    """Every candidate plan of `space` on `cluster` (scalar fields), ranked; see the module docstring.

    `search_mapping=False` keeps the cluster's node order as given (the baseline a mapping search beats).
    `orders_on_pool_only=True` judges the grid on the given node order only and tries the other
    candidate orders on the pooled best plans (a quicker, coarser mapping search).
    `should_stop` (no I/O, e.g. a deadline check) is called between chunks and mapping proposals;
    when it answers True the search raises `SearchStopped`.
    """
    space = space or SearchSpace()
    nodes, gpus_per_node = int(as_array(cluster.nodes)), int(as_array(cluster.gpus_per_node))
    has_ssd = bool(
        as_array(cluster.ssd_write_bandwidth_per_gpu_bytes_per_s) > 0
        and as_array(cluster.ssd_read_bandwidth_per_gpu_bytes_per_s) > 0
    )
    layouts = enumerate_layouts(
        space=space,
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        sequence_parallel=space.sequence_parallel,
        num_layers=int(as_array(model.num_layers)),
        num_experts=int(np.max(as_array(model.num_experts))),
    )
    inner = inner_axes(
        space=space,
        global_batch_size=global_batch_size,
        num_layers=int(as_array(model.num_layers)),
        has_ssd=has_ssd,
    )
    matrix = cluster.node_pair_bandwidth_bytes_per_s
    identity = np.arange(nodes, dtype=np.int64)
    orders = candidate_orders(matrix) if matrix is not None and search_mapping else [identity]
    clusters = [_ordered(cluster, order) for order in orders]

    names = _reason_names()
    refusals = dict.fromkeys((n for n, _ in names), 0)
    first = dict.fromkeys((n for n, _ in names), 0)
    kept_ids, kept_time, kept_memory, kept_gpus, kept_order = [], [], [], [], []
    valid_total, calls = 0, 0
    layouts_per_chunk = max(1, chunk_plans // max(inner.size, 1))
    grid_clusters = clusters[:1] if orders_on_pool_only else clusters
    for start in range(0, len(layouts), layouts_per_chunk):  # a loop over chunks of ~1e5 plans
        _check(should_stop)
        chunk = layouts.take(slice(start, start + layouts_per_chunk))
        plan = grid_plans(
            layouts=chunk,
            inner=inner,
            global_batch_size=global_batch_size,
            sequence_length=sequence_length,
            overlap=space.overlap_grad_reduce,
            tp_comm_overlap=space.tp_comm_overlap,
            zero3_runtime=space.zero3_runtime,
            expert_comm_overlap=space.expert_comm_overlap,
        )
        nodes_axis = chunk.nodes.reshape(-1, *([1] * len(inner.shape)))
        best_time: Array | None = None
        fits: NDArray[np.bool_] | None = None  # the first order's: later orders price only those plans
        best_order = np.zeros(1, dtype=np.int64)
        for index, ordered in enumerate(grid_clusters):  # a loop over node orders (1 without a measured matrix)
            result = evaluate_plans(  # times only where the plan fits (on the first order): the others are dropped
                model=model,
                cluster=dataclasses.replace(ordered, nodes=nodes_axis),
                plan=plan,
                outputs=GRID_OUTPUTS,
                fitting_only=fits is None,
                priced_only=fits,
            )
            calls += 1
            if best_time is None:
                reasons, fits, memory = result.reasons, result.fits, result.memory_total_bytes
                _count_reasons(reasons, names, refusals, first)
                valid_total += int(np.count_nonzero(result.valid))
                best_time = np.asarray(result.iteration_time_s)
                best_order = np.zeros(best_time.shape, dtype=np.int64)
            else:
                faster = result.iteration_time_s < best_time
                best_time = np.where(faster, result.iteration_time_s, best_time)
                best_order = np.where(faster, index, best_order)
        assert best_time is not None and fits is not None
        local = np.flatnonzero(fits)
        kept_ids.append(local + start * inner.size)
        kept_time.append(best_time.reshape(-1)[local])
        kept_memory.append(np.asarray(memory).reshape(-1)[local])
        kept_gpus.append(chunk.gpus[local // inner.size])
        kept_order.append(np.broadcast_to(best_order, best_time.shape).reshape(-1)[local])

    ids = np.concatenate(kept_ids) if kept_ids else np.zeros(0, dtype=np.int64)
    time = np.concatenate(kept_time) if kept_time else np.zeros(0)
    memory_all = np.concatenate(kept_memory) if kept_memory else np.zeros(0)
    gpus_all = np.concatenate(kept_gpus) if kept_gpus else np.zeros(0)
    order_all = np.concatenate(kept_order) if kept_order else np.zeros(0, dtype=np.int64)

    def ranked(selection: IntArray) -> RankedPlans:
        return _evaluate_flat(
            model=model,
            clusters=clusters,
            layouts=layouts,
            inner=inner,
            ids=ids[selection],
            order_index=order_all[selection],
            global_batch_size=global_batch_size,
            sequence_length=sequence_length,
            overlap=space.overlap_grad_reduce,
            tp_comm_overlap=space.tp_comm_overlap,
            zero3_runtime=space.zero3_runtime,
            expert_comm_overlap=space.expert_comm_overlap,
        )

    _check(should_stop)
    rank = np.lexsort((ids, memory_all, time))  # ties in time: less memory first
    rank = rank[~_twins(ids, layouts, inner, space)[rank]]
    pool = rank[: max(top_k, 0) * (4 if matrix is not None else 1)]
    front = np.flatnonzero(pareto_mask(time, memory_all, gpus_all))
    front = front[np.lexsort((gpus_all[front], time[front]))]
    # the pooled plans and the front in one engine call (each plan priced as alone), then apart
    both = ranked(np.concatenate([pool, front]))
    top, pareto = _take(both, np.arange(pool.size)), _take(both, np.arange(pool.size, pool.size + front.size))
    calls += _orders_used(order_all[pool]) + _orders_used(order_all[front])
    if len(grid_clusters) < len(clusters) and len(top):
        top = _other_orders(model=model, top=top, clusters=clusters)
        calls += len(clusters) - 1
    if matrix is not None and search_mapping and len(top) and mapping_steps > 0:
        top, orders, climb_calls = _climb_mapping(
            model=model,
            cluster=cluster,
            matrix=matrix,
            top=top,
            orders=orders,
            steps=mapping_steps,
            seed=seed,
            should_stop=should_stop,
        )
        calls += climb_calls
    keep = np.lexsort((top.plan_ids, top.evaluation.memory_total_bytes, top.evaluation.iteration_time_s))[:top_k]
    top = _take(top, keep)
    sample = np.random.default_rng(seed).permutation(ids.size)[:sample_size]
    return SearchResult(
        candidates=len(layouts) * inner.size,
        valid=valid_total,
        fitting=int(ids.size),
        refusals=refusals,
        first_refusals=first,
        top=top,
        pareto=pareto,
        node_orders=tuple(orders),
        engine_calls=calls,
        sample_time_s=time[sample],
        sample_memory_bytes=memory_all[sample],
        sample_gpus=gpus_all[sample],
    )


def _twins(ids: IntArray, layouts: Layouts, inner: InnerAxes, space: SearchSpace) -> NDArray[np.bool_]:
    """Plans that only repeat another candidate in the top list: Megatron-SP with tp = 1 is no
    sequence parallelism, and with one pipeline stage every schedule runs the micro-batches back to
    back as 1F1B does (at equal or more memory). Each is hidden only when its twin is in the space."""
    layout_index, inner_index = np.divmod(ids, inner.size)
    schedule_index = np.unravel_index(inner_index, inner.shape)[1]
    twins = np.zeros(ids.shape, dtype=np.bool_)
    if Schedule.ONE_F_ONE_B in space.schedules:
        one_stage = layouts.pipeline_parallel[layout_index] == 1
        twins |= one_stage & (inner.pipeline_schedule[schedule_index] != Schedule.ONE_F_ONE_B)
    if SequenceParallel.NONE in space.sequence_parallel:
        megatron = layouts.sequence_parallel[layout_index] == SequenceParallel.MEGATRON
        twins |= megatron & (layouts.tensor_parallel[layout_index] == 1)
    return twins


def _ordered(cluster: ClusterArrays, order: IntArray) -> ClusterArrays:
    matrix = cluster.node_pair_bandwidth_bytes_per_s
    if matrix is None:
        return cluster
    return dataclasses.replace(cluster, node_pair_bandwidth_bytes_per_s=permuted(matrix, order))


def _count_reasons(
    reasons: NDArray[np.int64], names: list[tuple[str, int]], every: dict[str, int], first: dict[str, int]
) -> None:
    remaining = np.ones(reasons.shape, dtype=bool)
    present = int(np.bitwise_or.reduce(reasons, axis=None)) if reasons.size else 0
    for name, bit in names:  # a loop over the reason codes; one the chunk never sets costs nothing
        if not present & bit:
            continue
        has = (reasons & bit) != 0
        every[name] += int(np.count_nonzero(has))
        first_here = has & remaining
        first[name] += int(np.count_nonzero(first_here))
        remaining &= ~has


def _evaluate_flat(
    *,
    model: ModelArrays,
    clusters: list[ClusterArrays],
    layouts: Layouts,
    inner: InnerAxes,
    ids: IntArray,
    order_index: IntArray,
    global_batch_size: int,
    sequence_length: int,
    overlap: bool,
    tp_comm_overlap: bool,
    zero3_runtime: int,
    expert_comm_overlap: bool = False,
) -> RankedPlans:
    plans, nodes = decode_plans(
        plan_ids=ids,
        layouts=layouts,
        inner=inner,
        global_batch_size=global_batch_size,
        sequence_length=sequence_length,
        overlap=overlap,
        tp_comm_overlap=tp_comm_overlap,
        zero3_runtime=zero3_runtime,
        expert_comm_overlap=expert_comm_overlap,
    )
    gpus = layouts.gpus[np.divmod(ids, inner.size)[0]]
    evaluation = _evaluate_on_orders(model=model, clusters=clusters, plans=plans, nodes=nodes, order_index=order_index)
    return RankedPlans(
        plan_ids=ids, plans=plans, nodes=nodes, gpus=gpus, node_order_index=order_index, evaluation=evaluation
    )


def _evaluate_on_orders(
    *, model: ModelArrays, clusters: list[ClusterArrays], plans: PlanArrays, nodes: Array, order_index: IntArray
) -> PlanEvaluation:
    """Each plan on its own node order, in one call: the orders some plan runs on (a handful) stacked, each plan
    pointed at its own (`ClusterArrays.node_order`)."""
    used = np.unique(order_index) if order_index.size else np.zeros(1, dtype=np.int64)
    if used.size == 1:
        return evaluate_plans(model=model, cluster=dataclasses.replace(clusters[int(used[0])], nodes=nodes), plan=plans)
    position = np.searchsorted(used, order_index).astype(np.float64)
    cluster = dataclasses.replace(_stacked(clusters, used), nodes=nodes, node_order=position)
    return evaluate_plans(model=model, cluster=cluster, plan=plans)


def _stacked(clusters: list[ClusterArrays], indices: IntArray) -> ClusterArrays:
    """The cluster with the measured matrices of the orders `indices` stacked (picked by `node_order`)."""
    matrices = [clusters[int(k)].node_pair_bandwidth_bytes_per_s for k in indices]
    return dataclasses.replace(clusters[0], node_pair_bandwidth_bytes_per_s=np.stack(matrices))  # type: ignore[arg-type]


def _row(evaluation: PlanEvaluation, row: int) -> PlanEvaluation:
    """One node order's evaluation out of a call that judged the plans (last axis) on several (first axis)."""
    return PlanEvaluation(**{f.name: getattr(evaluation, f.name)[row] for f in fields(PlanEvaluation)})


def _keep_faster(
    evaluation: PlanEvaluation, order_index: IntArray, result: PlanEvaluation, index: int
) -> tuple[PlanEvaluation, IntArray, NDArray[np.bool_]]:
    """Each plan keeps the faster of its evaluation so far and `result` (node order `index`)."""
    better = np.asarray(result.iteration_time_s < evaluation.iteration_time_s)
    if not better.any():
        return evaluation, order_index, better
    kept = PlanEvaluation(
        **{
            f.name: np.where(better, getattr(result, f.name), getattr(evaluation, f.name))
            for f in fields(PlanEvaluation)
        }
    )
    return kept, np.where(better, index, order_index), better


def _orders_used(order_index: IntArray) -> int:
    """Engine calls `_evaluate_on_orders` makes for these plans."""
    return max(int(np.unique(order_index).size), 1)


def _other_orders(*, model: ModelArrays, top: RankedPlans, clusters: list[ClusterArrays]) -> RankedPlans:
    """Each pooled plan (judged on the first order) on every other order, keeping its fastest: one call, the
    other orders on a first axis, kept in order as one call per order would."""
    others = np.arange(1, len(clusters), dtype=np.int64)
    positions = np.arange(others.size, dtype=np.float64)[:, None]
    cluster = dataclasses.replace(_stacked(clusters, others), nodes=top.nodes, node_order=positions)
    result = evaluate_plans(model=model, cluster=cluster, plan=top.plans)
    evaluation, order_index = top.evaluation, top.node_order_index.copy()
    for row, index in enumerate(others):  # a loop over node orders (a handful), no engine call
        evaluation, order_index, _ = _keep_faster(evaluation, order_index, _row(result, row), int(index))
    return dataclasses.replace(top, evaluation=evaluation, node_order_index=order_index)


def _take(ranked: RankedPlans, index: IntArray) -> RankedPlans:
    def pick(value: Any) -> Any:
        return np.asarray(value)[index] if np.ndim(value) else value

    plans = PlanArrays(**{f.name: pick(getattr(ranked.plans, f.name)) for f in fields(PlanArrays)})
    evaluation = PlanEvaluation(**{f.name: pick(getattr(ranked.evaluation, f.name)) for f in fields(PlanEvaluation)})
    return RankedPlans(
        plan_ids=ranked.plan_ids[index],
        plans=plans,
        nodes=ranked.nodes[index],
        gpus=ranked.gpus[index],
        node_order_index=ranked.node_order_index[index],
        evaluation=evaluation,
    )


#: Hill-climb proposals judged in one engine call (each on its own node order); a proposal accepted before
#: the last of them ends the window early, since the later ones were swaps of the order it replaced.
CLIMB_WINDOW = 8


def _climb_mapping(
    *,
    model: ModelArrays,
    cluster: ClusterArrays,
    matrix: Array,
    top: RankedPlans,
    orders: list[IntArray],
    steps: int,
    seed: int,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[RankedPlans, list[IntArray], int]:
    """First-improvement hill-climb of node swaps on the best plan's order; every proposal is judged over all
    pooled plans, and each plan keeps the fastest order seen.

    The swaps are drawn up front (the same draws as one at a time: each takes two distinct nodes, whatever the
    order) and up to `CLIMB_WINDOW` proposals on the current order are judged in one call; their outcomes are
    then taken in turn, as one call per proposal would, until one is accepted. Returns the proposals judged
    as the engine calls."""
    rng = np.random.default_rng(seed)
    best = int(np.argmin(top.evaluation.iteration_time_s))
    current = orders[int(top.node_order_index[best])]
    current_time = float(top.evaluation.iteration_time_s[best])
    evaluation = top.evaluation
    order_index = top.node_order_index.copy()
    orders = list(orders)
    pairs = [swap_pair(current.size, rng) for _ in range(steps if matrix.shape[0] >= 2 else 0)]
    step = 0
    while step < len(pairs):  # a loop over windows of proposals, one call each
        _check(should_stop)
        proposals = [swap(current, pair) for pair in pairs[step : step + CLIMB_WINDOW]]
        stacked = np.stack([permuted(matrix, proposal) for proposal in proposals])
        positions = np.arange(len(proposals), dtype=np.float64)[:, None]
        result = evaluate_plans(
            model=model,
            cluster=dataclasses.replace(
                cluster, node_pair_bandwidth_bytes_per_s=stacked, nodes=top.nodes, node_order=positions
            ),
            plan=top.plans,
        )
        for row, proposal in enumerate(proposals):  # the proposals in turn, until one is accepted
            step += 1
            judged = _row(result, row)
            evaluation, order_index, better = _keep_faster(evaluation, order_index, judged, len(orders))
            if better.any():
                orders.append(proposal)
            if float(judged.iteration_time_s[best]) < current_time:
                current, current_time = proposal, float(judged.iteration_time_s[best])
                break
    return dataclasses.replace(top, evaluation=evaluation, node_order_index=order_index), orders, step
