"""What a plan search shows: the search itself, the top plans and the Pareto front as tables, the
refusals per reason, the effect of activation offload, and each top plan as a training document."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dse.engines.plan_search import SearchResult, SearchStopped, search_plans
from dse.engines.plan_search.search import RankedPlans
from dse.engines.training import REASONS, ModelArrays
from dse.engines.training.codes import (
    CONTEXT_PARALLEL_EXCHANGE_CODES,
    OFFLOAD_CODES,
    RECOMPUTE_CODES,
    SCHEDULE_CODES,
    SEQUENCE_PARALLEL_CODES,
    ZERO3_RUNTIME_CODES,
    code_name,
)
from dse.engines.training.validity import OUT_OF_MEMORY
from dse.scenarios.base import Chart, Column, ScenarioLink, Stopped, Table, current_should_stop
from dse.scenarios.kinds.plan_search.charts import pareto_chart, refusals_chart, top_plans_breakdown_chart
from dse.scenarios.kinds.plan_search.inputs import MAPPING_STEPS, ResolvedPlanSearch
from dse.scenarios.shared.cluster import GB
from dse.scenarios.shared.training_device import training_cluster
from dse.scenarios.shared.training_document import training_document

GIB = 2.0**30

QUICK_NOTE = (
    "Quick search: a coarser subset of the candidates (powers-of-two micro-batches and chunks, the largest "
    "cluster size allowed only, FlashAttention only when allowed, no GPipe when 1F1B is allowed; on a measured "
    "cluster the grid is judged on the given node order and the other orders and 8 node swaps on the best plans). "
    "A faster plan may exist: search_effort 'full' judges every candidate."
)


TIME_PARTS = (
    ("time_forward_s", "forward"),
    ("time_backward_s", "backward"),
    ("time_recompute_s", "recompute"),
    ("time_tensor_parallel_s", "TP comm"),
    ("time_sequence_parallel_s", "SP comm"),
    ("time_context_parallel_s", "CP exchange"),
    ("time_pipeline_send_s", "PP sends"),
    ("time_zero_gather_s", "ZeRO-3 gathers"),
    ("time_offload_stall_s", "SSD stall"),
    ("time_bubble_s", "bubble"),
    ("time_data_parallel_s", "DP sync"),
    ("time_optimizer_s", "optimizer"),
    ("time_expert_all_to_all_s", "EP all-to-all"),
)


def search(r: ResolvedPlanSearch) -> SearchResult:
    """Every candidate plan judged by the training engine (one search); stops (raising `Stopped`)
    between chunks when this thread's evaluation passes its deadline or is cancelled."""
    try:
        return _search(r)
    except SearchStopped:
        raise Stopped() from None


def _search(r: ResolvedPlanSearch) -> SearchResult:
    return search_plans(
        model=ModelArrays.from_llm(r.model),
        cluster=training_cluster(r.cluster, r.dtype, r.software_stack, r.kernel_fits or {}),
        global_batch_size=int(r.global_batch_size),
        sequence_length=int(r.sequence_length_tokens),
        space=r.space,
        top_k=r.top_k,
        search_mapping=r.search_mapping,
        mapping_steps=MAPPING_STEPS[r.search_effort],
        orders_on_pool_only=r.search_effort == "quick",
        should_stop=current_should_stop(),
    )


#: The title of the offload comparison (and of its deferred study).
OFFLOAD_TITLE = "Activation offload to SSDs: the same search with and without it"


def without_offload(r: ResolvedPlanSearch) -> SearchResult:
    """The same search with activation offload taken out of the space."""
    return search(dataclasses.replace(r, space=dataclasses.replace(r.space, offload=(int(OFFLOAD_CODES["none"]),))))


def _context_and_stages(d: dict[str, Any]) -> str:
    cp = f", CP {d['context_parallel']} ({d['context_parallel_exchange']})" if d["context_parallel"] > 1 else ""
    stages = (
        f", stages {d['first_stage_layers'] or 'even'}/.../{d['last_stage_layers'] or 'even'} layers"
        if d["first_stage_layers"] or d["last_stage_layers"]
        else ""
    )
    return cp + stages


def describe(d: dict[str, Any]) -> str:
    degree = d["sequence_parallel_degree"]
    sp = d["sequence_parallel"] + (f" x{degree}" if degree > 1 else "") + _context_and_stages(d)
    ep = f", EP {d['expert_parallel']}" if d.get("expert_parallel", 1) > 1 else ""
    return (
        f"dp {d['data_parallel']} x tp {d['tensor_parallel']} x pp {d['pipeline_parallel']}{ep}, SP {sp}, "
        f"micro-batch {d['micro_batch_size']}, ZeRO-{d['zero_stage']}, recompute {d['recompute']}"
        f"{', FlashAttention' if d['flash_attention'] else ''}, offload {d['activation_offload']}"
    )


def best_plan_note(top: RankedPlans, capacity: float) -> str:
    e = top.evaluation
    memory = float(e.memory_total_bytes[0])
    return (
        f"Fastest plan that fits: {describe(plan_dict(top, 0))} on {round(float(top.gpus[0]))} GPUs, "
        f"{float(e.iteration_time_s[0]):.3g} s per iteration (MFU {float(e.model_flops_utilization[0]):.1%}); "
        f"peak {memory / GIB:.1f} GiB per GPU of {capacity / GIB:.0f} GiB "
        f"({(capacity - memory) / GIB:.1f} GiB to spare)."
    )


def _offload_rows(result: SearchResult) -> list[float | int | str | bool | None]:
    has = len(result.top) > 0
    e = result.top.evaluation
    return [
        result.fitting,
        float(e.iteration_time_s[0]) if has else None,
        float(e.memory_total_bytes[0]) / GIB if has else None,
        describe(plan_dict(result.top, 0)) if has else "no plan fits",
    ]


def offload_table(with_offload: SearchResult, without: SearchResult) -> Table:
    return Table(
        key="offload_effect",
        title=OFFLOAD_TITLE,
        columns=[
            Column(key="search", label="search"),
            Column(key="fitting_plans", label="plans that fit", unit="plans"),
            Column(key="best_iteration_time_s", label="best iteration time", unit="s"),
            Column(key="best_memory_gib", label="peak memory of the best plan", unit="GiB"),
            Column(key="best_plan", label="best plan"),
        ],
        rows=[
            ["offload allowed (SSDs)", *_offload_rows(with_offload)],
            ["no offload", *_offload_rows(without)],
        ],
    )


def offload_note(with_offload: SearchResult, without: SearchResult) -> str:
    """What moving activations to the SSDs changes: plans that fit, the best time and its memory."""
    if not len(with_offload.top):
        return "Activation offload to SSDs: no plan fits even with offload."
    t_on = float(with_offload.top.evaluation.iteration_time_s[0])
    m_on = float(with_offload.top.evaluation.memory_total_bytes[0])
    head = f"Activation offload to SSDs lets {with_offload.fitting:,} plans fit against {without.fitting:,} without it"
    if not len(without.top):
        return head + f"; without it no plan fits, with it the best runs {t_on:.3g} s per iteration."
    t_off = float(without.top.evaluation.iteration_time_s[0])
    m_off = float(without.top.evaluation.memory_total_bytes[0])
    if t_on < t_off * (1 - 1e-9):
        change = f"the best iteration falls from {t_off:.3g} s to {t_on:.3g} s ({t_off / t_on - 1:.1%} faster)"
    else:
        change = (
            f"the best iteration time stays {t_off:.3g} s (the SSDs buy no speed here: the fastest plans already fit)"
        )
    return (
        f"{head}; {change}; peak memory of the best plan {m_off / GIB:.1f} -> {m_on / GIB:.1f} GiB per GPU "
        f"({plan_dict(with_offload.top, 0)['activation_offload']} offload)."
    )


PLAN_COLUMNS = [
    Column(key="rank", label="rank"),
    Column(key="gpus", label="GPUs", unit="GPUs"),
    Column(key="nodes", label="nodes", unit="nodes"),
    Column(key="data_parallel", label="dp"),
    Column(key="tensor_parallel", label="tp"),
    Column(key="pipeline_parallel", label="pp"),
    Column(key="sequence_parallel", label="sequence parallel"),
    Column(key="sequence_parallel_degree", label="sp degree"),
    Column(key="expert_parallel", label="ep"),
    Column(key="micro_batch_size", label="micro-batch", unit="sequences"),
    Column(key="zero_stage", label="ZeRO"),
    Column(key="recompute", label="recompute"),
    Column(key="flash_attention", label="FlashAttention"),
    Column(key="pipeline_schedule", label="schedule"),
    Column(key="virtual_stages", label="chunks"),
    Column(key="activation_offload", label="offload"),
    Column(key="context_parallel", label="cp"),
    Column(key="context_parallel_exchange", label="CP exchange"),
    Column(key="first_stage_layers", label="first stage layers (0: even)"),
    Column(key="last_stage_layers", label="last stage layers (0: even)"),
    Column(key="iteration_time_s", label="iteration time", unit="s"),
    Column(key="tokens_per_s", label="throughput", unit="tokens/s"),
    Column(key="model_flops_utilization", label="MFU", unit="fraction"),
    Column(key="achieved_tflops_per_gpu", label="achieved", unit="TFLOP/s per GPU"),
    Column(key="memory_total_gib", label="peak memory", unit="GiB"),
    *[Column(key=key, label=label, unit="s") for key, label in TIME_PARTS],
    Column(key="node_order", label="physical node of each logical node"),
]


def plan_dict(ranked: RankedPlans, i: int) -> dict[str, Any]:
    """Plan i's degrees and choices, by name (`plan_dicts` of that one plan)."""
    return plan_dicts(ranked, np.array([i]))[0]


def plan_dicts(ranked: RankedPlans, rows: NDArray[np.int64] | None = None) -> list[dict[str, Any]]:
    """The degrees and choices of the plans at `rows` (None: every plan), by name: each field converted once
    for all of them (a table of tens of plans), not once per plan."""
    index = np.arange(len(ranked)) if rows is None else rows
    p = ranked.plans

    def whole(value: Any) -> list[int]:
        array = np.asarray(value, dtype=np.float64)
        picked = array.reshape(-1)[index] if array.ndim else np.broadcast_to(array, index.shape)
        return [round(x) for x in picked.tolist()]

    def named(codes: Any, value: Any) -> list[str]:
        return [code_name(codes, x) for x in whole(value)]

    columns: dict[str, list[Any]] = {
        "gpus": whole(ranked.gpus),
        "nodes": whole(ranked.nodes),
        "data_parallel": whole(p.data_parallel),
        "tensor_parallel": whole(p.tensor_parallel),
        "pipeline_parallel": whole(p.pipeline_parallel),
        "sequence_parallel": named(SEQUENCE_PARALLEL_CODES, p.sequence_parallel),
        "sequence_parallel_degree": whole(p.sequence_parallel_degree),
        "expert_parallel": whole(p.expert_parallel),
        "micro_batch_size": whole(p.micro_batch_size),
        "zero_stage": whole(p.zero_stage),
        "recompute": named(RECOMPUTE_CODES, p.recompute),
        "flash_attention": [bool(x) for x in whole(p.flash_attention)],
        "pipeline_schedule": named(SCHEDULE_CODES, p.pipeline_schedule),
        "virtual_stages": whole(p.virtual_stages),
        "activation_offload": named(OFFLOAD_CODES, p.activation_offload),
        "context_parallel": whole(p.context_parallel),
        "context_parallel_exchange": named(CONTEXT_PARALLEL_EXCHANGE_CODES, p.context_parallel_exchange),
        "first_stage_layers": whole(p.first_stage_layers),
        "last_stage_layers": whole(p.last_stage_layers),
    }
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def plan_rows(ranked: RankedPlans, result: SearchResult, r: ResolvedPlanSearch) -> list[list[Any]]:
    e = ranked.evaluation
    mapped = r.cluster.node_pair_bandwidth_bytes_per_s is not None
    time_s, tokens_per_s, mfu = e.iteration_time_s.tolist(), e.tokens_per_s.tolist(), e.model_flops_utilization.tolist()
    achieved, memory = e.achieved_flops_per_gpu.tolist(), e.memory_total_bytes.tolist()
    parts = [getattr(e, key).tolist() for key, _ in TIME_PARTS]
    rows: list[list[Any]] = []
    for i, d in enumerate(plan_dicts(ranked)):  # the listed plans (tens), for the table
        rows.append(
            [
                i + 1,
                *d.values(),
                time_s[i],
                tokens_per_s[i],
                mfu[i],
                achieved[i] / 1e12,
                memory[i] / GIB,
                *[part[i] for part in parts],
                " ".join(str(n) for n in node_order(ranked, result, i)) if mapped else "",
            ]
        )
    return rows


def node_order(ranked: RankedPlans, result: SearchResult, i: int) -> list[int]:
    order = result.node_orders[int(ranked.node_order_index[i])]
    return [int(n) for n in order[: round(float(ranked.nodes[i]))]]


def hover(ranked: RankedPlans) -> list[str]:
    e = ranked.evaluation
    time_s, memory, mfu = e.iteration_time_s.tolist(), e.memory_total_bytes.tolist(), e.model_flops_utilization.tolist()
    out = []
    for i, d in enumerate(plan_dicts(ranked)):
        degree = d["sequence_parallel_degree"]
        sp = d["sequence_parallel"] + (f" x{degree}" if degree > 1 else "") + _context_and_stages(d)
        schedule = d["pipeline_schedule"] + (f" v={d['virtual_stages']}" if d["virtual_stages"] > 1 else "")
        out.append(
            f"{d['gpus']} GPUs: dp {d['data_parallel']} x tp {d['tensor_parallel']} x pp {d['pipeline_parallel']}"
            f"<br>SP {sp}, micro-batch {d['micro_batch_size']}, ZeRO-{d['zero_stage']}, recompute {d['recompute']}"
            f"{', FlashAttention' if d['flash_attention'] else ''}"
            f"<br>{schedule}, offload {d['activation_offload']}"
            f"<br>{time_s[i]:.3f} s/iteration, {memory[i] / GIB:.1f} GiB/GPU,"
            f" MFU {mfu[i]:.1%}"
        )
    return out


#: Plans whose iteration time and peak memory both lie within this relative distance of a better-ranked
#: listed plan are near-identical: the top table folds them into that plan's row (their ranks are listed).
NEAR_IDENTICAL_RELATIVE = 1e-3


def fold_near_identical(columns: list[Column], rows: list[list[Any]]) -> tuple[list[Column], list[list[Any]]]:
    """The rows with near-identical plans folded into the first of them, and a column naming the folded ranks."""
    keys = [c.key for c in columns]
    t, m, rank = keys.index("iteration_time_s"), keys.index("memory_total_gib"), keys.index("rank")

    def close(a: float, b: float) -> bool:
        return abs(a - b) <= NEAR_IDENTICAL_RELATIVE * max(abs(a), abs(b))

    kept: list[list[Any]] = []
    folded: list[list[int]] = []
    for row in rows:
        twin = next((i for i, k in enumerate(kept) if close(k[t], row[t]) and close(k[m], row[m])), None)
        if twin is None:
            kept.append(row)
            folded.append([])
        else:
            folded[twin].append(int(row[rank]))
    column = Column(key="near_identical_ranks", label="near-identical plans folded in (same time and memory)")
    return [*columns, column], [[*row, ", ".join(f"#{n}" for n in f)] for row, f in zip(kept, folded, strict=True)]


#: Every reason a candidate is refused for, by its code name (its message is what a user reads).
_REASON_BY_NAME = {**REASONS, OUT_OF_MEMORY.name: OUT_OF_MEMORY}


def tables(result: SearchResult, r: ResolvedPlanSearch) -> list[Table]:
    """The top plans (near-identical ones folded), the refusals per reason and the Pareto front."""
    top_columns, top_rows = fold_near_identical(PLAN_COLUMNS, plan_rows(result.top, result, r))
    return [
        Table(key="top_plans", title="Fastest plans that fit", columns=top_columns, rows=top_rows),
        Table(
            key="refusals",
            title="Candidates refused, per reason",
            columns=[
                Column(key="reason", label="reason"),
                Column(key="field", label="field to change"),
                Column(key="code", label="code (the API's name)"),
                Column(key="plans", label="plans with this reason", unit="plans"),
                Column(key="first_reason", label="plans with this as first reason", unit="plans"),
            ],
            rows=[
                [reason.message, reason.field, reason.name, result.refusals[name], result.first_refusals[name]]
                for name, reason in _REASON_BY_NAME.items()
            ],
        ),
        Table(
            key="pareto",
            title="Pareto front (time, memory, GPUs)",
            columns=PLAN_COLUMNS,
            rows=plan_rows(result.pareto, result, r),
        ),
    ]


def charts(result: SearchResult, capacity: float) -> list[Chart]:
    """The Pareto front over a sample of the fitting plans, where the top plans' time goes, the refusals."""
    top = result.top
    return [
        Chart(
            key="pareto",
            title="Pareto front",
            figure=pareto_chart(
                time_s=result.pareto.evaluation.iteration_time_s.tolist(),
                memory_bytes=result.pareto.evaluation.memory_total_bytes.tolist(),
                gpus=result.pareto.gpus.tolist(),
                hover=hover(result.pareto),
                top_time_s=top.evaluation.iteration_time_s.tolist(),
                top_memory_bytes=top.evaluation.memory_total_bytes.tolist(),
                top_hover=hover(top),
                capacity_bytes=capacity,
                cloud_time_s=result.sample_time_s.tolist(),
                cloud_memory_bytes=result.sample_memory_bytes.tolist(),
                cloud_gpus=result.sample_gpus.tolist(),
            ),
        ),
        Chart(
            key="top_breakdown",
            title="Where the top plans' time goes",
            figure=top_plans_breakdown_chart(
                [f"#{i + 1}" for i in range(len(top))],
                [(label, getattr(top.evaluation, key).tolist()) for key, label in TIME_PARTS],
            ),
        ),
        Chart(
            key="refusals",
            title="Refusals",
            figure=refusals_chart(
                [_REASON_BY_NAME[n].message for n, c in result.first_refusals.items() if c],
                [c for c in result.first_refusals.values() if c],
            ),
        ),
    ]


def notes(result: SearchResult, r: ResolvedPlanSearch, capacity: float) -> list[str]:
    out = [
        f"{result.candidates:,} candidates judged in {result.engine_calls} engine calls; "
        f"{result.valid:,} well formed, {result.fitting:,} fit in {capacity / GIB:.0f} GiB.",
        "Ranks are laid out tp -> sequence -> dp -> pp (Megatron-LM); TP stays inside a node's NVLink island.",
    ]
    if r.search_effort == "quick":
        out.insert(0, QUICK_NOTE)
    if r.cluster.node_pair_bandwidth_bytes_per_s is not None:
        out.append(
            f"Measured node-pair bandwidths: {len(result.node_orders)} node orders tried (given order, greedy "
            "fast-link chain, islands interleaved, hill-climb of swaps); each plan keeps its fastest."
        )
    if not len(result.top):
        out.append("No plan fits: try more nodes, a smaller micro-batch cap, or recomputation.")
    else:
        out.append(best_plan_note(result.top, capacity))
    return out


def plan_document(ranked: RankedPlans, result: SearchResult, r: ResolvedPlanSearch, i: int) -> dict[str, Any]:
    """A "training" scenario document that reproduces plan i: the plan's nodes (physical nodes
    re-listed in the mapping's order, so the measured matrix is the one the search used)."""
    d = plan_dict(ranked, i)
    cluster = dict(r.cluster_input)
    cluster["nodes"] = d["nodes"]
    matrix = r.cluster.node_pair_bandwidth_bytes_per_s
    if matrix is not None:
        order = node_order(ranked, result, i)
        cluster["node_pair_bandwidth_gb_per_s"] = [[matrix[a][b] / GB for b in order] for a in order]
    return training_document(
        name=f"Plan #{i + 1} from a plan search",
        model=r.model_input,
        cluster=cluster,
        global_batch_size=int(r.global_batch_size),
        sequence_length_tokens=int(r.sequence_length_tokens),
        plan={k: v for k, v in d.items() if k not in ("gpus", "nodes")},
        overlap_grad_reduce=r.space.overlap_grad_reduce,
        overlap_param_gather=r.space.overlap_grad_reduce,  # the search pairs them (SearchSpace.overlap_grad_reduce)
        tp_comm_overlap=r.space.tp_comm_overlap,
        expert_comm_overlap=r.space.expert_comm_overlap,
        zero3_runtime=code_name(ZERO3_RUNTIME_CODES, r.space.zero3_runtime),
        dtype=r.dtype,
        software_stack=r.software_stack_input,
    )


def training_links(result: SearchResult, r: ResolvedPlanSearch) -> list[ScenarioLink]:
    """Each top plan as a training scenario to open (its time per iteration, exactly reproduced there)."""
    top = result.top
    return [
        ScenarioLink(
            label=f"Open plan #{i + 1} as a training scenario",
            document=plan_document(top, result, r, i),
            note=f"rank {i + 1}: {float(top.evaluation.iteration_time_s[i]):.6g} s per iteration",
        )
        for i in range(len(top))
    ]
