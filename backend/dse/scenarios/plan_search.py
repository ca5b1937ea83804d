"""Scenario kind "plan_search": the fastest parallel training plans that fit a model on a cluster.

Every candidate plan (dp, tp, pp, sequence parallelism, micro-batch, ZeRO, recomputation,
schedule and chunks, offload; and, on a measured heterogeneous cluster, the node mapping) is
judged by the training engine; the answer lists the top plans with their breakdowns, the Pareto
front, the refusals per reason, and a ready "training" scenario document for each top plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from pydantic import Field

from dse.catalog import Catalog
from dse.engines.plan_search import SearchResult, SearchSpace, search_plans
from dse.engines.plan_search.search import RankedPlans
from dse.engines.training import REASONS, ClusterArrays, ModelArrays, PlanArrays, evaluate_plans
from dse.engines.training.codes import (
    OFFLOAD_CODES,
    RECOMPUTE_CODES,
    SCHEDULE_CODES,
    SEQUENCE_PARALLEL_CODES,
    code_name,
)
from dse.engines.training.validity import OUT_OF_MEMORY
from dse.figures.plan_search import pareto_figure, refusals_figure, top_plans_breakdown_figure
from dse.scenarios.base import (
    Chart,
    Column,
    EvaluationResult,
    InputError,
    Metric,
    MetricSpec,
    ScenarioKind,
    StrictModel,
    Table,
)
from dse.scenarios.training import KIND as TRAINING
from dse.scenarios.training import NARAYANAN_TABLE1, ClusterInputs, TrainingInputs
from dse.specs.llm import LLMSpec
from dse.specs.network import ClusterSpec

GIB = 2.0**30
GB = 1e9
#: Sweep points one request may ask for: each point is a whole search (about a second each).
MAX_SEARCHES_PER_SWEEP = 8

SequenceParallelName = Literal["none", "megatron", "ring", "ulysses"]
RecomputeName = Literal["none", "selective", "full"]
ScheduleName = Literal["gpipe", "1f1b", "interleaved"]
OffloadName = Literal["none", "adaptive", "all"]
SearchEffort = Literal["full", "quick"]
#: Node-swap proposals of the mapping hill-climb, per effort (the engine's default for a full search).
MAPPING_STEPS: dict[str, int] = {"full": 48, "quick": 8}


QUICK_NOTE = (
    "Quick search: a coarser subset of the candidates (powers-of-two micro-batches and chunks, the largest "
    "cluster size allowed only, FlashAttention only when allowed, no GPipe when 1F1B is allowed; on a measured "
    "cluster the grid is judged on the given node order and the other orders and 8 node swaps on the best plans). "
    "A faster plan may exist: search_effort 'full' judges every candidate."
)


class SearchSpaceInputs(StrictModel):
    sequence_parallel: list[SequenceParallelName] = Field(
        default_factory=lambda: list(get_args(SequenceParallelName)), min_length=1
    )
    zero_stages: list[int] = Field(default_factory=lambda: [0, 1, 2, 3], min_length=1)
    recompute: list[RecomputeName] = Field(default_factory=lambda: list(get_args(RecomputeName)), min_length=1)
    flash_attention: list[bool] = Field(
        default_factory=lambda: [False, True],
        min_length=1,
        description="Attention kernels tried (FlashAttention or not).",
    )
    pipeline_schedules: list[ScheduleName] = Field(default_factory=lambda: list(get_args(ScheduleName)), min_length=1)
    activation_offload: list[OffloadName] = Field(
        default_factory=lambda: list(get_args(OffloadName)),
        min_length=1,
        description="Offload modes tried when the cluster has SSDs (only 'none' otherwise).",
    )
    max_virtual_stages: int = Field(8, ge=1, le=64, description="Most model chunks per GPU (interleaved).")
    max_micro_batch_size: int | None = Field(None, ge=1, description="Largest micro-batch tried (none: the batch).")
    node_counts: list[int] | None = Field(
        None,
        description="Cluster sizes in nodes a plan may use (none: powers of two, halvings and the whole cluster).",
    )
    overlap_grad_reduce: bool = True


class PlanSearchInputs(StrictModel):
    model: str | LLMSpec = Field("gpt3-175b", description="LLM preset id or inline spec.")
    cluster: ClusterInputs = Field(default_factory=lambda: ClusterInputs(nodes=128))
    global_batch_size: int = Field(1536, ge=1, description="Sequences per iteration.")
    sequence_length_tokens: int = Field(2048, ge=1)
    dtype: Literal["bf16", "fp16"] = "bf16"
    space: SearchSpaceInputs = Field(default_factory=SearchSpaceInputs)
    search_mapping: bool = Field(True, description="Search the node mapping on a measured heterogeneous cluster.")
    top_k: int = Field(10, ge=1, le=50, description="Plans listed.")
    search_effort: SearchEffort = Field(
        "full",
        description="'full' judges every candidate; 'quick' a coarser subset (powers-of-two micro-batches and "
        "chunks, the largest cluster size only, a shorter mapping climb) for a first answer in tens of ms.",
        # The dashboard shows this value's answer first, then the document's own (progressive refinement).
        json_schema_extra={"x-quick-first": "quick"},
    )


@dataclass(frozen=True)
class ResolvedPlanSearch:
    model: LLMSpec
    cluster: ClusterSpec
    global_batch_size: int
    sequence_length_tokens: int
    dtype: str
    space: SearchSpace
    search_mapping: bool
    top_k: int
    search_effort: str
    #: What the user gave for the model and the cluster, to write training documents with.
    model_input: Any
    cluster_input: dict[str, Any]


def _codes(names: Sequence[str], table: dict[str, int]) -> tuple[int, ...]:
    return tuple(sorted({int(table[n]) for n in names}))


def resolve_cluster(model: str | LLMSpec, c: ClusterInputs, catalog: Catalog) -> tuple[LLMSpec, ClusterSpec]:
    """The model and cluster exactly as the training kind resolves them (presets, default links,
    the measured matrix, errors naming `model` / `cluster.*`): through a plan that is always well
    formed (pure data parallelism, one sequence per GPU)."""
    gpus = c.nodes * c.gpus_per_node
    probe = TrainingInputs(
        model=model, cluster=c, global_batch_size=gpus, micro_batch_size=1, data_parallel=gpus, sequence_length_tokens=1
    )
    resolved = TRAINING.resolve(probe, catalog)
    return resolved.model, resolved.cluster


_METRICS: dict[str, MetricSpec] = {
    "best_iteration_time_s": MetricSpec(label="Best iteration time", unit="s", formula="min over plans that fit"),
    "best_tokens_per_s": MetricSpec(label="Best throughput", unit="tokens/s", formula="B*s / T_best"),
    "best_model_flops_utilization": MetricSpec(
        label="MFU of the best plan", unit="fraction", formula="B*s*(6N + 12*L*h*s) / (T * GPUs * peak)"
    ),
    "best_memory_total_bytes": MetricSpec(label="Peak memory per GPU of the best plan", unit="bytes"),
    "best_gpus": MetricSpec(label="GPUs used by the best plan", unit="GPUs"),
    "candidates": MetricSpec(label="Candidate plans judged", unit="plans", formula="layouts x inner axes"),
    "valid_plans": MetricSpec(label="Well-formed plans", unit="plans", formula="no structural reason"),
    "fitting_plans": MetricSpec(label="Plans that fit", unit="plans", formula="valid and peak memory <= GPU memory"),
    "pareto_plans": MetricSpec(label="Pareto-optimal plans", unit="plans", formula="(time, memory, GPUs) minimised"),
}

_TIME_PARTS = (
    ("time_forward_s", "forward"),
    ("time_backward_s", "backward"),
    ("time_recompute_s", "recompute"),
    ("time_tensor_parallel_s", "TP comm"),
    ("time_sequence_parallel_s", "SP comm"),
    ("time_pipeline_send_s", "PP sends"),
    ("time_zero_gather_s", "ZeRO-3 gathers"),
    ("time_offload_stall_s", "SSD stall"),
    ("time_bubble_s", "bubble"),
    ("time_data_parallel_s", "DP sync"),
    ("time_optimizer_s", "optimizer"),
)


class PlanSearchKind(ScenarioKind[PlanSearchInputs, ResolvedPlanSearch]):
    kind = "plan_search"
    title = "Plan search: the fastest training plan that fits"
    description = (
        "Enumerates every parallel training plan of a model on a cluster (dp, tp, pp, sequence "
        "parallelism, micro-batch, ZeRO, recomputation, schedule, offload and, on a heterogeneous "
        "cluster, the node mapping), evaluates them all with the training engine, and returns the "
        "fastest that fit, the Pareto front and the refusals per reason."
    )
    engine_version = "plan-search-1"
    inputs_model = PlanSearchInputs
    metric_specs = _METRICS

    def resolve(self, inputs: PlanSearchInputs, catalog: Catalog) -> ResolvedPlanSearch:
        c = inputs.cluster
        s = inputs.space
        model, cluster = resolve_cluster(inputs.model, c, catalog)
        if any(z not in (0, 1, 2, 3) for z in s.zero_stages):
            raise InputError("space.zero_stages", "ZeRO stages are 0, 1, 2 or 3")
        if s.node_counts is not None and not any(1 <= n <= c.nodes for n in s.node_counts):
            raise InputError("space.node_counts", f"give at least one node count between 1 and {c.nodes}")
        if (c.ssd is None or c.ssds_per_node == 0) and set(s.activation_offload) != {"none"}:
            offload: Sequence[str] = ("none",)  # no drives: offload is not a choice here
        else:
            offload = s.activation_offload
        quick = inputs.search_effort == "quick"
        node_counts = None if s.node_counts is None else tuple(s.node_counts)
        if quick:  # the largest cluster size allowed: where the fastest plans usually are
            node_counts = (c.nodes,) if node_counts is None else (max(n for n in node_counts if n <= c.nodes),)
        flash = sorted({int(f) for f in s.flash_attention})
        schedules = _codes(s.pipeline_schedules, SCHEDULE_CODES)
        if quick:  # FlashAttention (fused, no stored scores) over unfused; 1F1B over GPipe (same bubble, less memory)
            flash = flash[-1:]
            if int(SCHEDULE_CODES["1f1b"]) in schedules:
                schedules = tuple(k for k in schedules if k != int(SCHEDULE_CODES["gpipe"]))
        space = SearchSpace(
            sequence_parallel=_codes(s.sequence_parallel, SEQUENCE_PARALLEL_CODES),
            zero_stages=tuple(sorted(set(s.zero_stages))),
            recompute=_codes(s.recompute, RECOMPUTE_CODES),
            flash_attention=tuple(flash),
            schedules=schedules,
            offload=_codes(offload, OFFLOAD_CODES),
            max_virtual_stages=s.max_virtual_stages,
            max_micro_batch_size=s.max_micro_batch_size,
            node_counts=node_counts,
            overlap_grad_reduce=s.overlap_grad_reduce,
            powers_of_two_only=quick,
        )
        model_input = inputs.model if isinstance(inputs.model, str) else dataclasses.asdict(inputs.model)
        return ResolvedPlanSearch(
            model=model,
            cluster=cluster,
            global_batch_size=inputs.global_batch_size,
            sequence_length_tokens=inputs.sequence_length_tokens,
            dtype=inputs.dtype,
            space=space,
            search_mapping=inputs.search_mapping,
            top_k=inputs.top_k,
            search_effort=inputs.search_effort,
            model_input=model_input,
            cluster_input=c.model_dump(mode="json"),
        )

    def _search(self, r: ResolvedPlanSearch) -> SearchResult:
        return search_plans(
            model=ModelArrays.from_llm(r.model),
            cluster=ClusterArrays.from_spec(r.cluster, dtype=r.dtype),
            global_batch_size=int(r.global_batch_size),
            sequence_length=int(r.sequence_length_tokens),
            space=r.space,
            top_k=r.top_k,
            search_mapping=r.search_mapping,
            mapping_steps=MAPPING_STEPS[r.search_effort],
            orders_on_pool_only=r.search_effort == "quick",
        )

    def _summary(self, result: SearchResult) -> dict[str, float]:
        e = result.top.evaluation
        has = len(result.top) > 0
        return {
            "best_iteration_time_s": float(e.iteration_time_s[0]) if has else np.nan,
            "best_tokens_per_s": float(e.tokens_per_s[0]) if has else np.nan,
            "best_model_flops_utilization": float(e.model_flops_utilization[0]) if has else np.nan,
            "best_memory_total_bytes": float(e.memory_total_bytes[0]) if has else np.nan,
            "best_gpus": float(result.top.gpus[0]) if has else np.nan,
            "candidates": float(result.candidates),
            "valid_plans": float(result.valid),
            "fitting_plans": float(result.fitting),
            "pareto_plans": float(len(result.pareto)),
        }

    def compute(self, resolved: ResolvedPlanSearch) -> dict[str, Any]:
        """A search per design point: a sweep (over the batch, the nodes, ...) runs one search per point."""
        leaves = _numeric_leaves(resolved)
        shape = np.broadcast_shapes(*(np.shape(v) for v in leaves.values())) if leaves else ()
        points = int(np.prod(shape)) if shape else 1
        if points > MAX_SEARCHES_PER_SWEEP:
            raise ValueError(f"{points} searches requested; at most {MAX_SEARCHES_PER_SWEEP} per sweep")
        out = {key: np.full(shape, np.nan) for key in _METRICS}
        for index in np.ndindex(*shape) if shape else [()]:  # a loop over searches, each millions of plans
            point = _pick_point(resolved, leaves, index, shape)
            summary = self._summary(self._search(point))
            for key, value in summary.items():
                out[key][index] = value
        return out

    def evaluate(self, resolved: ResolvedPlanSearch) -> EvaluationResult:
        result = self._search(resolved)
        summary = self._summary(result)
        capacity = resolved.cluster.accelerator.memory_capacity_bytes
        top = result.top
        metrics: list[Metric] = [
            self.metric(
                "best_iteration_time_s",
                summary["best_iteration_time_s"],
                plans_that_fit=float(result.fitting),
            ),
            self.metric(
                "best_tokens_per_s",
                summary["best_tokens_per_s"],
                B=resolved.global_batch_size,
                s=resolved.sequence_length_tokens,
            ),
            self.metric("best_model_flops_utilization", summary["best_model_flops_utilization"]),
            self.metric("best_memory_total_bytes", summary["best_memory_total_bytes"], capacity_bytes=capacity),
            self.metric("best_gpus", summary["best_gpus"], cluster_gpus=resolved.cluster.gpus),
            self.metric("candidates", summary["candidates"], engine_calls=float(result.engine_calls)),
            self.metric("valid_plans", summary["valid_plans"]),
            self.metric("fitting_plans", summary["fitting_plans"]),
            self.metric("pareto_plans", summary["pareto_plans"]),
        ]
        top_rows = _plan_rows(top, result, resolved)
        pareto_rows = _plan_rows(result.pareto, result, resolved)
        tables = [
            Table(key="top_plans", title="Fastest plans that fit", columns=_PLAN_COLUMNS, rows=top_rows),
            Table(
                key="refusals",
                title="Candidates refused, per reason",
                columns=[
                    Column(key="reason", label="reason"),
                    Column(key="field", label="field to change"),
                    Column(key="message", label="rule"),
                    Column(key="plans", label="plans with this reason", unit="plans"),
                    Column(key="first_reason", label="plans with this as first reason", unit="plans"),
                ],
                rows=[
                    [reason.name, reason.field, reason.message, result.refusals[name], result.first_refusals[name]]
                    for name, reason in (*REASONS.items(), (OUT_OF_MEMORY.name, OUT_OF_MEMORY))
                ],
            ),
            Table(key="pareto", title="Pareto front (time, memory, GPUs)", columns=_PLAN_COLUMNS, rows=pareto_rows),
        ]
        figures = [
            Chart(
                key="pareto",
                title="Pareto front",
                figure=pareto_figure(
                    time_s=result.pareto.evaluation.iteration_time_s.tolist(),
                    memory_bytes=result.pareto.evaluation.memory_total_bytes.tolist(),
                    gpus=result.pareto.gpus.tolist(),
                    hover=_hover(result.pareto),
                    top_time_s=top.evaluation.iteration_time_s.tolist(),
                    top_memory_bytes=top.evaluation.memory_total_bytes.tolist(),
                    top_hover=_hover(top),
                    capacity_bytes=capacity,
                    cloud_time_s=result.sample_time_s.tolist(),
                    cloud_memory_bytes=result.sample_memory_bytes.tolist(),
                    cloud_gpus=result.sample_gpus.tolist(),
                ),
            ),
            Chart(
                key="top_breakdown",
                title="Where the top plans' time goes",
                figure=top_plans_breakdown_figure(
                    [f"#{i + 1}" for i in range(len(top))],
                    [(label, getattr(top.evaluation, key).tolist()) for key, label in _TIME_PARTS],
                ),
            ),
            Chart(
                key="refusals",
                title="Refusals",
                figure=refusals_figure(
                    [n for n, c in result.first_refusals.items() if c],
                    [c for c in result.first_refusals.values() if c],
                ),
            ),
        ]
        notes = [
            f"{result.candidates:,} candidates judged in {result.engine_calls} engine calls; "
            f"{result.valid:,} well formed, {result.fitting:,} fit in {capacity / GIB:.0f} GiB.",
            "Ranks are laid out tp -> sequence -> dp -> pp (Megatron-LM); TP stays inside a node's NVLink island.",
        ]
        if resolved.search_effort == "quick":
            notes.insert(0, QUICK_NOTE)
        if resolved.cluster.node_pair_bandwidth_bytes_per_s is not None:
            notes.append(
                f"Measured node-pair bandwidths: {len(result.node_orders)} node orders tried (given order, greedy "
                "fast-link chain, islands interleaved, hill-climb of swaps); each plan keeps its fastest."
            )
        if not len(top):
            notes.append("No plan fits: try more nodes, a smaller micro-batch cap, or recomputation.")
        else:
            notes.append(_best_plan_note(top, capacity))
        if any(code != OFFLOAD_CODES["none"] for code in resolved.space.offload):
            without = self._search(
                dataclasses.replace(
                    resolved, space=dataclasses.replace(resolved.space, offload=(int(OFFLOAD_CODES["none"]),))
                )
            )
            tables.append(_offload_table(result, without))
            notes.append(_offload_note(result, without))
        references = [_training_reference(i, top, result, resolved) for i in range(len(top))]
        references += _published_references(resolved, top)
        return EvaluationResult(
            kind=self.kind,
            engine_version=self.engine_version,
            feasible=len(top) > 0,
            metrics=metrics,
            tables=tables,
            charts=figures,
            notes=notes,
            references=references,
        )

    def examples(self) -> list[dict[str, Any]]:
        def doc(name: str, **inputs: Any) -> dict[str, Any]:
            return {"schema_version": 1, "kind": "plan_search", "name": name, "inputs": inputs}

        selene = {"accelerator": "a100-80gb", "intra_node_link": "nvlink3", "inter_node_link": "ib-hdr"}
        racks = [[25.0 if (i % 2) == (j % 2) else 2.5 for j in range(4)] for i in range(4)]
        # Two pods of 32 DGX H100 nodes: 50 GB/s per GPU inside a pod (one 400 Gb/s NDR port per GPU,
        # models_db/interconnects/ib-ndr.json), a quarter of it between pods (an assumed 4:1 tapered spine).
        two_pods = {"accelerator": "h100-sxm", "intra_node_link": "nvlink4", "inter_node_link": "ib-ndr"}
        pods = [[50.0 if (i < 32) == (j < 32) else 12.5 for j in range(64)] for i in range(64)]
        return [
            doc(
                "GPT-3 175B on 1024 A100s: the fastest plan that fits",
                model="gpt3-175b",
                cluster={**selene, "nodes": 128},
                global_batch_size=1536,
            ),
            doc(
                "Which data/tensor/pipeline/sequence-parallel plan trains Llama-3 70B at 32K context fastest on "
                "512 H100s in two pods, and does it fit?",
                model="llama3-70b",
                cluster={**two_pods, "nodes": 64, "node_pair_bandwidth_gb_per_s": pods},
                global_batch_size=128,
                sequence_length_tokens=32768,
                space={"node_counts": [64]},
            ),
            doc(
                "What if activations go to NVMe SSDs? (Llama-3 70B at 32K context on 512 H100s in two pods, "
                "8 PM1733 drives per node)",
                model="llama3-70b",
                cluster={
                    **two_pods,
                    "nodes": 64,
                    "node_pair_bandwidth_gb_per_s": pods,
                    "ssd": "samsung-pm1733",
                    "ssds_per_node": 8,
                },
                global_batch_size=128,
                sequence_length_tokens=32768,
                # SSDTrain's adaptive rule (offload only what the drives can hide) against none.
                space={"node_counts": [64], "activation_offload": ["none", "adaptive"]},
            ),
            doc(
                "Megatron-LM GPT 1T on 3072 A100s (Narayanan et al. SC'21, Table 1 setting)",
                model="megatron-gpt-1t",
                cluster={**selene, "nodes": 384},
                global_batch_size=3072,
                space={"node_counts": [384]},
            ),
            doc(
                "GPT-3 30B on 4 nodes in two racks (cross-rack links at a tenth): plan and node mapping (Pipette)",
                model="gpt3-30b",
                cluster={**selene, "nodes": 4, "node_pair_bandwidth_gb_per_s": racks},
                global_batch_size=512,
                space={"zero_stages": [0, 1], "node_counts": [4]},
            ),
            doc(
                "Megatron-LM GPT 18.4B on 256 A100s (Narayanan et al. SC'21, Table 1 setting)",
                model="megatron-gpt-18.4b",
                cluster={**selene, "nodes": 32},
                global_batch_size=1024,
                space={"node_counts": [32]},
            ),
        ]


def _describe(d: dict[str, Any]) -> str:
    degree = d["sequence_parallel_degree"]
    sp = d["sequence_parallel"] + (f" x{degree}" if degree > 1 else "")
    return (
        f"dp {d['data_parallel']} x tp {d['tensor_parallel']} x pp {d['pipeline_parallel']}, SP {sp}, "
        f"micro-batch {d['micro_batch_size']}, ZeRO-{d['zero_stage']}, recompute {d['recompute']}"
        f"{', FlashAttention' if d['flash_attention'] else ''}, offload {d['activation_offload']}"
    )


def _best_plan_note(top: RankedPlans, capacity: float) -> str:
    e = top.evaluation
    memory = float(e.memory_total_bytes[0])
    return (
        f"Fastest plan that fits: {_describe(_plan_dict(top, 0))} on {round(float(top.gpus[0]))} GPUs, "
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
        _describe(_plan_dict(result.top, 0)) if has else "no plan fits",
    ]


def _offload_table(with_offload: SearchResult, without: SearchResult) -> Table:
    return Table(
        key="offload_effect",
        title="Activation offload to SSDs: the same search with and without it",
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


def _offload_note(with_offload: SearchResult, without: SearchResult) -> str:
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
        f"({_plan_dict(with_offload.top, 0)['activation_offload']} offload)."
    )


_PLAN_COLUMNS = [
    Column(key="rank", label="rank"),
    Column(key="gpus", label="GPUs", unit="GPUs"),
    Column(key="nodes", label="nodes", unit="nodes"),
    Column(key="data_parallel", label="dp"),
    Column(key="tensor_parallel", label="tp"),
    Column(key="pipeline_parallel", label="pp"),
    Column(key="sequence_parallel", label="sequence parallel"),
    Column(key="sequence_parallel_degree", label="sp degree"),
    Column(key="micro_batch_size", label="micro-batch", unit="sequences"),
    Column(key="zero_stage", label="ZeRO"),
    Column(key="recompute", label="recompute"),
    Column(key="flash_attention", label="FlashAttention"),
    Column(key="pipeline_schedule", label="schedule"),
    Column(key="virtual_stages", label="chunks"),
    Column(key="activation_offload", label="offload"),
    Column(key="iteration_time_s", label="iteration time", unit="s"),
    Column(key="tokens_per_s", label="throughput", unit="tokens/s"),
    Column(key="model_flops_utilization", label="MFU", unit="fraction"),
    Column(key="achieved_tflops_per_gpu", label="achieved", unit="TFLOP/s per GPU"),
    Column(key="memory_total_gib", label="peak memory", unit="GiB"),
    *[Column(key=key, label=label, unit="s") for key, label in _TIME_PARTS],
    Column(key="node_order", label="physical node of each logical node"),
]


def _plan_dict(ranked: RankedPlans, i: int) -> dict[str, Any]:
    p = ranked.plans

    def whole(value: Any) -> int:
        return round(float(np.asarray(value).reshape(-1)[i] if np.ndim(value) else value))

    return {
        "gpus": whole(ranked.gpus),
        "nodes": whole(ranked.nodes),
        "data_parallel": whole(p.data_parallel),
        "tensor_parallel": whole(p.tensor_parallel),
        "pipeline_parallel": whole(p.pipeline_parallel),
        "sequence_parallel": code_name(SEQUENCE_PARALLEL_CODES, whole(p.sequence_parallel)),
        "sequence_parallel_degree": whole(p.sequence_parallel_degree),
        "micro_batch_size": whole(p.micro_batch_size),
        "zero_stage": whole(p.zero_stage),
        "recompute": code_name(RECOMPUTE_CODES, whole(p.recompute)),
        "flash_attention": bool(whole(p.flash_attention)),
        "pipeline_schedule": code_name(SCHEDULE_CODES, whole(p.pipeline_schedule)),
        "virtual_stages": whole(p.virtual_stages),
        "activation_offload": code_name(OFFLOAD_CODES, whole(p.activation_offload)),
    }


def _plan_rows(ranked: RankedPlans, result: SearchResult, r: ResolvedPlanSearch) -> list[list[Any]]:
    e = ranked.evaluation
    rows: list[list[Any]] = []
    for i in range(len(ranked)):  # the listed plans (tens), for the table
        d = _plan_dict(ranked, i)
        order = _node_order(ranked, result, i)
        rows.append(
            [
                i + 1,
                *d.values(),
                float(e.iteration_time_s[i]),
                float(e.tokens_per_s[i]),
                float(e.model_flops_utilization[i]),
                float(e.achieved_flops_per_gpu[i]) / 1e12,
                float(e.memory_total_bytes[i]) / GIB,
                *[float(getattr(e, key)[i]) for key, _ in _TIME_PARTS],
                " ".join(str(n) for n in order) if r.cluster.node_pair_bandwidth_bytes_per_s is not None else "",
            ]
        )
    return rows


def _node_order(ranked: RankedPlans, result: SearchResult, i: int) -> list[int]:
    order = result.node_orders[int(ranked.node_order_index[i])]
    return [int(n) for n in order[: round(float(ranked.nodes[i]))]]


def _hover(ranked: RankedPlans) -> list[str]:
    e = ranked.evaluation
    out = []
    for i in range(len(ranked)):
        d = _plan_dict(ranked, i)
        degree = d["sequence_parallel_degree"]
        sp = d["sequence_parallel"] + (f" x{degree}" if degree > 1 else "")
        schedule = d["pipeline_schedule"] + (f" v={d['virtual_stages']}" if d["virtual_stages"] > 1 else "")
        out.append(
            f"{d['gpus']} GPUs: dp {d['data_parallel']} x tp {d['tensor_parallel']} x pp {d['pipeline_parallel']}"
            f"<br>SP {sp}, micro-batch {d['micro_batch_size']}, ZeRO-{d['zero_stage']}, recompute {d['recompute']}"
            f"{', FlashAttention' if d['flash_attention'] else ''}"
            f"<br>{schedule}, offload {d['activation_offload']}"
            f"<br>{float(e.iteration_time_s[i]):.3f} s/iteration, {float(e.memory_total_bytes[i]) / GIB:.1f} GiB/GPU,"
            f" MFU {float(e.model_flops_utilization[i]):.1%}"
        )
    return out


def training_document(ranked: RankedPlans, result: SearchResult, r: ResolvedPlanSearch, i: int) -> dict[str, Any]:
    """A "training" scenario document that reproduces plan i: the plan's nodes (physical nodes
    re-listed in the mapping's order, so the measured matrix is the one the search used)."""
    d = _plan_dict(ranked, i)
    cluster = dict(r.cluster_input)
    cluster["nodes"] = d["nodes"]
    matrix = r.cluster.node_pair_bandwidth_bytes_per_s
    if matrix is not None:
        order = _node_order(ranked, result, i)
        cluster["node_pair_bandwidth_gb_per_s"] = [[matrix[a][b] / GB for b in order] for a in order]
    inputs = {
        "model": r.model_input,
        "cluster": cluster,
        "global_batch_size": int(r.global_batch_size),
        "sequence_length_tokens": int(r.sequence_length_tokens),
        **{k: v for k, v in d.items() if k not in ("gpus", "nodes")},
        "overlap_grad_reduce": r.space.overlap_grad_reduce,
        "dtype": r.dtype,
    }
    return {"schema_version": 1, "kind": "training", "name": f"Plan #{i + 1} from a plan search", "inputs": inputs}


def _training_reference(i: int, top: RankedPlans, result: SearchResult, r: ResolvedPlanSearch) -> dict[str, Any]:
    return {
        "type": "training_scenario",
        "rank": i + 1,
        "label": f"Open plan #{i + 1} as a training scenario",
        "iteration_time_s": float(top.evaluation.iteration_time_s[i]),
        "document": training_document(top, result, r, i),
    }


def _published_references(r: ResolvedPlanSearch, top: RankedPlans) -> list[dict[str, Any]]:
    """Narayanan et al. SC'21 Table 1: the published plan on the same setting, beside the best found."""
    row = NARAYANAN_TABLE1.get(r.model.id)
    if row is None or not len(top):
        return []
    t, p, gpus, batch, published = row
    if (gpus, batch, r.sequence_length_tokens) != (r.cluster.gpus, r.global_batch_size, 2048):
        return []
    plan = published_plan(r.model.id)
    evaluation = evaluate_plans(
        model=ModelArrays.from_llm(r.model), cluster=ClusterArrays.from_spec(r.cluster, dtype=r.dtype), plan=plan
    )
    return [
        {
            "type": "published",
            "source": "Narayanan et al., SC'21, Table 1 (A100, seq 2048, full recomputation); micro-batch, "
            "chunks and DDP from NVIDIA/Megatron-LM examples/sc21/run_table_1.sh",
            "quantity": "iteration time of the published plan (engine) vs the best plan found",
            "published_plan": {"tensor_parallel": t, "pipeline_parallel": p, "data_parallel": gpus // (t * p)},
            "published_tflops_per_gpu": published,
            "published_plan_fits": bool(np.asarray(evaluation.fits).reshape(-1)[0]),
            "published_plan_iteration_time_s": float(np.asarray(evaluation.iteration_time_s).reshape(-1)[0]),
            "best_iteration_time_s": float(top.evaluation.iteration_time_s[0]),
        }
    ]


#: Micro-batch, interleaved chunks and whether DDP overlaps, per Table 1 row, from
#: NVIDIA/Megatron-LM examples/sc21/run_table_1.sh (as the training engine's validation test uses them).
RUN_TABLE_1: dict[str, tuple[int, int, bool]] = {
    "megatron-gpt-1.7b": (16, 1, True),
    "megatron-gpt-3.6b": (16, 1, True),
    "megatron-gpt-7.5b": (16, 1, True),
    "megatron-gpt-18.4b": (8, 1, True),
    "megatron-gpt-39.1b": (4, 1, False),
    "megatron-gpt-76.1b": (2, 3, False),
    "megatron-gpt-145.6b": (2, 2, False),
    "megatron-gpt-310.1b": (1, 2, False),
    "megatron-gpt-529.6b": (1, 3, False),
    "megatron-gpt-1t": (1, 1, False),
}


def published_plan(model_id: str) -> PlanArrays:
    """The plan Narayanan et al. ran for a Table 1 model (full recomputation, 1F1B or interleaved)."""
    t, p, gpus, batch, _ = NARAYANAN_TABLE1[model_id]
    micro, chunks, overlap = RUN_TABLE_1[model_id]
    return PlanArrays(
        global_batch_size=float(batch),
        micro_batch_size=float(micro),
        sequence_length=2048.0,
        data_parallel=float(gpus // (t * p)),
        tensor_parallel=float(t),
        pipeline_parallel=float(p),
        recompute=float(RECOMPUTE_CODES["full"]),
        pipeline_schedule=float(SCHEDULE_CODES["interleaved" if chunks > 1 else "1f1b"]),
        virtual_stages=float(chunks),
        overlap_grad_reduce=1.0 if overlap else 0.0,
    )


def _numeric_leaves(resolved: Any, prefix: str = "") -> dict[str, Any]:
    """Paths of the resolved tree that a sweep made arrays."""
    leaves: dict[str, Any] = {}
    if not dataclasses.is_dataclass(resolved):
        return leaves
    for f in dataclasses.fields(resolved):
        value = getattr(resolved, f.name)
        if isinstance(value, np.ndarray):
            leaves[prefix + f.name] = value
        elif dataclasses.is_dataclass(value):
            leaves.update(_numeric_leaves(value, f"{prefix}{f.name}."))
    return leaves


def _pick_point(
    resolved: ResolvedPlanSearch, leaves: dict[str, Any], index: tuple[int, ...], shape: tuple[int, ...]
) -> ResolvedPlanSearch:
    """The resolved tree at one sweep point (every swept leaf back to a scalar)."""
    from dse.scenarios.sweep import set_path

    point: Any = resolved
    for path, value in leaves.items():
        point = set_path(point, path, np.broadcast_to(np.asarray(value), shape)[index].item())
    result: ResolvedPlanSearch = point
    return result


KIND = PlanSearchKind()

__all__ = ["KIND", "PlanSearchInputs", "ResolvedPlanSearch", "published_plan", "training_document"]
