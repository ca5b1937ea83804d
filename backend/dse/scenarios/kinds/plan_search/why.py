"""Why the fastest plan wins: the top plan beside its one-change neighbours (another ZeRO stage, tensor
instead of context parallelism, a pipeline, another recomputation or micro-batch, ...), the best plan of
Megatron-LM's own family (PTD-P: no ZeRO-2/3, no Ring/Ulysses) and the best ZeRO-3 (sharded data-parallel)
plan when the top plan is of the other family, each judged by the training engine, with the part of the
iteration that grows the most or the reason it cannot run."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from dse.engines.plan_search import SearchResult, search_plans
from dse.engines.plan_search.search import RankedPlans
from dse.engines.training import ClusterArrays, ModelArrays, PlanArrays, describe_reasons, evaluate_plans
from dse.engines.training.codes import ZERO3_RUNTIME_CODES, Recompute, Schedule, SequenceParallel, code_name
from dse.scenarios.base import Column, Table
from dse.scenarios.kinds.plan_search.inputs import ResolvedPlanSearch
from dse.scenarios.shared.training_device import training_cluster

GIB = 2.0**30
TIME_PARTS = (
    ("time_forward_s", "forward"),
    ("time_backward_s", "backward"),
    ("time_recompute_s", "recomputation"),
    ("time_tensor_parallel_s", "TP communication"),
    ("time_sequence_parallel_s", "sequence-parallel communication"),
    ("time_context_parallel_s", "context-parallel K/V exchange"),
    ("time_pipeline_send_s", "pipeline sends"),
    ("time_zero_gather_s", "ZeRO-3 gathers"),
    ("time_offload_stall_s", "SSD stalls"),
    ("time_bubble_s", "pipeline bubble"),
    ("time_data_parallel_s", "data-parallel sync"),
    ("time_optimizer_s", "optimizer step"),
    ("time_expert_all_to_all_s", "EP all-to-alls"),
)
#: How a neighbour the search did not judge is marked (a one-change plan outside the searched space).
OUTSIDE_SPACE = "outside the searched space"
RECOMPUTE_NAMES = {int(Recompute.NONE): "none", int(Recompute.SELECTIVE): "selective", int(Recompute.FULL): "full"}
SP_NAMES = {int(k): k.name.lower() for k in SequenceParallel}

COLUMNS = [
    Column(key="change", label="change from the top plan"),
    Column(key="plan", label="plan"),
    Column(key="runs", label="runs and fits"),
    Column(key="iteration_time_s", label="iteration time", unit="s"),
    Column(key="slower_pct", label="slower than the top plan", unit="%"),
    Column(key="model_flops_utilization", label="MFU", unit="fraction"),
    Column(key="memory_total_gib", label="peak memory", unit="GiB"),
    Column(key="why", label="what grows most (or why it cannot run)"),
]


def _first(ranked: RankedPlans) -> dict[str, float]:
    return {
        f.name: float(np.asarray(getattr(ranked.plans, f.name), dtype=float).reshape(-1)[0])
        for f in dataclasses.fields(PlanArrays)
    }


def _describe(p: dict[str, float]) -> str:
    n = int(p["sequence_parallel_degree"])
    sp = SP_NAMES[int(p["sequence_parallel"])] + (f" x{n}" if n > 1 else "")
    cp = int(p.get("context_parallel", 1.0))
    sp += f", CP {cp}" if cp > 1 else ""
    if p.get("first_stage_layers", 0.0) or p.get("last_stage_layers", 0.0):
        sp += f", stage layers {int(p['first_stage_layers'])}/.../{int(p['last_stage_layers'])}"
    chunks = f" x{int(p['virtual_stages'])}" if p["virtual_stages"] > 1 else ""
    return (
        f"dp {int(p['data_parallel'])} x tp {int(p['tensor_parallel'])} x pp {int(p['pipeline_parallel'])}{chunks}, "
        f"SP {sp}, micro-batch {int(p['micro_batch_size'])}, ZeRO-{int(p['zero_stage'])}, "
        f"recompute {RECOMPUTE_NAMES[int(p['recompute'])]}{', FlashAttention' if p['flash_attention'] else ''}"
        f"{', TP overlap' if p['tp_comm_overlap'] else ''}"
    )


def _variants(top: dict[str, float], gpus_per_node: float, layers: float) -> list[tuple[str, dict[str, float]]]:
    """One-change neighbours of the top plan (a handful; each keeps the GPU count)."""
    out: list[tuple[str, dict[str, float]]] = []

    def add(label: str, **change: float) -> None:
        out.append((label, {**top, **change}))

    d, t, p, n = top["data_parallel"], top["tensor_parallel"], top["pipeline_parallel"], top["sequence_parallel_degree"]
    for zero in (0.0, 1.0, 2.0, 3.0):
        if zero != top["zero_stage"]:
            add(f"ZeRO-{int(zero)}", zero_stage=zero)
    cp = top.get("context_parallel", 1.0)
    if cp > 1:
        add(
            f"no context parallelism (its {int(cp)} GPUs to data parallelism)",
            context_parallel=1.0,
            data_parallel=d * cp,
        )
    if top.get("first_stage_layers", 0.0) or top.get("last_stage_layers", 0.0):
        add("even pipeline stages", first_stage_layers=0.0, last_stage_layers=0.0)
    if n > 1 and t * n <= gpus_per_node:
        add(
            f"tensor parallel {int(t * n)} with Megatron-SP instead of the sequence split over {int(n)}",
            tensor_parallel=t * n,
            sequence_parallel=float(SequenceParallel.MEGATRON),
            sequence_parallel_degree=1.0,
        )
    elif n == 1 and t < gpus_per_node and (d * t) % gpus_per_node == 0:
        add(
            f"tensor parallel {int(gpus_per_node)} with Megatron-SP",
            tensor_parallel=gpus_per_node,
            data_parallel=d * t / gpus_per_node,
            sequence_parallel=float(SequenceParallel.MEGATRON),
        )
    stages = 8.0
    if d % stages == 0 and layers % (p * stages) == 0:
        add(
            f"pipeline x{int(stages)} (1F1B; ZeRO-1 where ZeRO-2/3 cannot pipeline)",
            pipeline_parallel=p * stages,
            data_parallel=d / stages,
            zero_stage=min(top["zero_stage"], 1.0),
            pipeline_schedule=float(Schedule.ONE_F_ONE_B),
            virtual_stages=1.0,
        )
    add(
        "FlashAttention off" if top["flash_attention"] else "FlashAttention on",
        flash_attention=1.0 - top["flash_attention"],
    )
    for mode in (Recompute.NONE, Recompute.SELECTIVE, Recompute.FULL):
        if float(mode) != top["recompute"]:
            add(f"recompute {RECOMPUTE_NAMES[int(mode)]}", recompute=float(mode))
    if top["micro_batch_size"] > 1:
        add("micro-batch 1", micro_batch_size=1.0)
    add("micro-batch x2", micro_batch_size=2.0 * top["micro_batch_size"])
    if t > 1:
        add(
            "TP communication overlap "
            + ("off" if top["tp_comm_overlap"] else f"on ({OUTSIDE_SPACE}: space.tp_comm_overlap)"),
            tp_comm_overlap=1.0 - top["tp_comm_overlap"],
        )
    return out


def _search_cluster(r: ResolvedPlanSearch) -> ClusterArrays:
    """The cluster exactly as the search priced it (its software stack's kernel models)."""
    return training_cluster(r.cluster, r.dtype, r.software_stack, r.kernel_fits or {})


def _cluster(r: ResolvedPlanSearch, result: SearchResult, nodes: float, order_index: int) -> ClusterArrays:
    cluster = dataclasses.replace(_search_cluster(r), nodes=nodes)
    matrix = cluster.node_pair_bandwidth_bytes_per_s
    if matrix is not None:  # the top plan's node order (physical node of each logical node)
        order = np.asarray(result.node_orders[order_index])
        cluster = dataclasses.replace(cluster, node_pair_bandwidth_bytes_per_s=matrix[np.ix_(order, order)])
    return cluster


def _ptdp_best(r: ResolvedPlanSearch, model: ModelArrays, nodes: int) -> RankedPlans | None:
    """The fastest plan of Megatron-LM's PTD-P family on the same nodes (a quick, restricted search)."""
    return _restricted_best(
        r,
        model,
        nodes,
        zero_stages=tuple(z for z in r.space.zero_stages if z <= 1) or (0,),
        sequence_parallel=tuple(
            k for k in r.space.sequence_parallel if k in (SequenceParallel.NONE, SequenceParallel.MEGATRON)
        )
        or (int(SequenceParallel.NONE),),
    )


def _restricted_best(
    r: ResolvedPlanSearch,
    model: ModelArrays,
    nodes: int,
    zero_stages: tuple[int, ...],
    sequence_parallel: tuple[int, ...],
    powers_of_two_only: bool = True,
) -> RankedPlans | None:
    """The fastest plan on the same nodes with only these ZeRO stages and sequence splits (a quick search)."""
    space = dataclasses.replace(
        r.space,
        zero_stages=zero_stages,
        sequence_parallel=sequence_parallel,
        node_counts=(nodes,),
        powers_of_two_only=powers_of_two_only,
    )
    found = search_plans(
        model=model,
        cluster=_search_cluster(r),
        global_batch_size=int(r.global_batch_size),
        sequence_length=int(r.sequence_length_tokens),
        space=space,
        top_k=1,
        search_mapping=False,
    )
    return found.top if len(found.top) else None


#: The title of the why table (and of its deferred study).
WHY_TITLE = "Why the top plan wins: its one-change neighbours"


def why_table(result: SearchResult, r: ResolvedPlanSearch) -> Table | None:
    """The top plan, its neighbours and the best PTD-P plan, side by side (one engine call)."""
    top = result.top
    if not len(top):
        return None
    model = ModelArrays.from_llm(r.model)
    base = _first(top)
    rows_in: list[tuple[str, dict[str, float]]] = [("(the top plan)", base)]
    rows_in += _variants(base, float(r.cluster.gpus_per_node), float(r.model.num_layers))
    in_family = base["zero_stage"] <= 1 and base["sequence_parallel"] in (
        SequenceParallel.NONE,
        SequenceParallel.MEGATRON,
    )
    nodes = round(float(top.nodes[0]))
    if not in_family:
        ptdp = _ptdp_best(r, model, nodes)
        if ptdp is not None:
            rows_in.append(
                ("the fastest Megatron-LM PTD-P plan (no ZeRO-2/3, no Ring/Ulysses; quick search)", _first(ptdp))
            )
    if base["zero_stage"] < 3 and 3 in r.space.zero_stages:  # what the sharded-data-parallel family reaches
        # ZeRO-3 does not pipeline, so its space is small enough to search as the full search did
        space = r.space
        zero3 = _restricted_best(
            r, model, nodes, (3,), tuple(space.sequence_parallel), powers_of_two_only=space.powers_of_two_only
        )
        if zero3 is not None:
            runtime = code_name(ZERO3_RUNTIME_CODES, space.zero3_runtime)
            rows_in.append((f"the fastest ZeRO-3 plan (runtime {runtime})", _first(zero3)))
    plans = PlanArrays(**{k: np.array([p[k] for _, p in rows_in]) for k in base})
    cluster = _cluster(r, result, float(top.nodes[0]), int(top.node_order_index[0]))
    e = evaluate_plans(model=model, cluster=cluster, plan=plans)
    t0 = float(e.iteration_time_s[0])
    rows: list[list[Any]] = []
    for i, (label, plan) in enumerate(rows_in):
        time = float(e.iteration_time_s[i])
        if not bool(e.valid[i]):
            why = describe_reasons(int(e.reasons[i]))[0].message
        elif not bool(e.fits[i]):
            why = f"does not fit: {float(e.memory_total_bytes[i]) / GIB:.1f} GiB at the peak"
        elif i == 0:
            why = "; ".join(
                f"{label_} {float(getattr(e, key)[0]):.3g} s"
                for key, label_ in TIME_PARTS
                if float(getattr(e, key)[0]) > 0
            )
        else:
            grows = [(float(getattr(e, key)[i]) - float(getattr(e, key)[0]), label_) for key, label_ in TIME_PARTS]
            delta, part = max(grows)
            why = f"{part} +{delta:.3g} s" if delta > 0 else "nothing grows"
            if time < t0:  # only a plan outside the searched space can beat the top plan
                shrink, shrinking = min(grows)
                why = f"faster: {shrinking} {shrink:.3g} s"
        valid = bool(e.valid[i])
        rows.append(
            [
                label,
                _describe(plan),
                bool(e.fits[i]),
                time if valid else None,
                (time / t0 - 1.0) * 100.0 if valid else None,
                float(e.model_flops_utilization[i]) if valid else None,
                float(e.memory_total_bytes[i]) / GIB if valid else None,
                why,
            ]
        )
    return Table(key="why_top_plan", title=WHY_TITLE, columns=COLUMNS, rows=rows)


def why_note(result: SearchResult) -> str | None:
    """One line: how much of the top plan's iteration is compute, and where the rest goes."""
    top = result.top
    if not len(top):
        return None
    e = top.evaluation
    total = float(e.iteration_time_s[0])
    compute = sum(float(getattr(e, k)[0]) for k in ("time_forward_s", "time_backward_s", "time_recompute_s"))
    rest = sorted(((float(getattr(e, k)[0]), label) for k, label in TIME_PARTS[3:]), reverse=True)
    others = ", ".join(f"{label} {value / total:.1%}" for value, label in rest[:3] if value > 0)
    return (
        f"Why the top plan wins: {compute / total:.0%} of its iteration is compute (forward, backward, "
        f"recomputation){'; the rest: ' + others if others else ''}. Its neighbours (the table 'Why the top plan "
        "wins') either do not fit or add communication, bubble or recomputation; its MFU is set by the compute "
        "pricing, so compare the published runs listed beside it."
    )
