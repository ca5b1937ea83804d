"""Scenario kind "training": memory, time and timeline of one parallel LLM training plan."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from dse.catalog import Catalog
from dse.engines.training import (
    ClusterArrays,
    ModelArrays,
    PlanArrays,
    describe_reasons,
    evaluate_plans,
    plan_reasons,
)
from dse.engines.training.codes import OFFLOAD_CODES, RECOMPUTE_CODES, SCHEDULE_CODES, SEQUENCE_PARALLEL_CODES
from dse.engines.training.memory import korthikanti_table2_bytes
from dse.engines.training.timeline import MAX_TIMELINE_OPERATIONS, simulate_timeline
from dse.engines.training.validity import describe_reasons as reasons_of
from dse.figures.training import (
    memory_breakdown_figure,
    sequence_parallel_figure,
    time_breakdown_figure,
    timeline_figure,
)
from dse.scenarios.base import (
    Chart,
    Column,
    EvaluationResult,
    InputError,
    MetricSpec,
    ScenarioKind,
    StrictModel,
    Table,
)
from dse.scenarios.presets import preset_or_inline
from dse.specs.hardware import AcceleratorSpec
from dse.specs.llm import LLMSpec
from dse.specs.network import ClusterSpec, InterconnectSpec, SSDSpec

GIB = 2.0**30
GB = 1e9
#: Rows of the timeline table in one answer (the chart has no such limit below MAX_TIMELINE_OPERATIONS).
MAX_TIMELINE_ROWS = 10_000
#: Sequence-parallel kinds compared side by side, in the order of the figure's legend.
SEQUENCE_PARALLEL_KINDS: tuple[str, ...] = ("none", "megatron", "ring", "ulysses")
#: Sequence lengths of the comparison, as multiples of the scenario's (powers of two around it).
SEQUENCE_LENGTH_FACTORS: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)


class ClusterInputs(StrictModel):
    nodes: PositiveInt = Field(1, description="Nodes in the cluster.")
    gpus_per_node: PositiveInt = Field(8, description="GPUs per node.")
    accelerator: str | AcceleratorSpec = Field("a100-80gb", description="Accelerator preset id or inline spec.")
    intra_node_link: str | InterconnectSpec | None = Field(
        None, description="Link between GPUs of a node; none: the accelerator preset's own (intra_node_link_id)."
    )
    inter_node_link: str | InterconnectSpec = Field("ib-hdr", description="Network port of a node.")
    inter_node_links_per_node: PositiveInt = Field(8, description="Network ports per node.")
    ssd: str | SSDSpec | None = Field(None, description="SSD preset for activation offload (none: no drives).")
    ssds_per_node: NonNegativeInt = Field(0, description="Drives per node (striped, RAID0).")
    node_pair_bandwidth_gb_per_s: list[list[PositiveFloat]] | None = Field(
        None,
        description="Measured per-GPU bandwidth between nodes i and j, GB/s (nodes x nodes); a heterogeneous cluster.",
    )


class TrainingInputs(StrictModel):
    model: str | LLMSpec = Field("megatron-gpt-145.6b", description="LLM preset id or inline spec.")
    cluster: ClusterInputs = Field(default_factory=ClusterInputs)
    global_batch_size: PositiveInt = Field(description="Sequences per iteration.")
    micro_batch_size: PositiveInt = Field(description="Sequences per micro-batch.")
    sequence_length_tokens: PositiveInt = 2048
    data_parallel: PositiveInt = 1
    tensor_parallel: PositiveInt = 1
    pipeline_parallel: PositiveInt = 1
    sequence_parallel: Literal["none", "megatron", "ring", "ulysses"] = "none"
    sequence_parallel_degree: PositiveInt = Field(1, description="GPUs the sequence is split over (Ring, Ulysses).")
    zero_stage: int = Field(0, ge=0, le=3)
    recompute: Literal["none", "selective", "full"] = "none"
    pipeline_schedule: Literal["gpipe", "1f1b", "interleaved"] = "1f1b"
    virtual_stages: PositiveInt = Field(1, description="Model chunks per GPU (interleaved schedule).")
    activation_offload: Literal["none", "adaptive", "all"] = "none"
    overlap_grad_reduce: bool = True
    flash_attention: bool = Field(False, description="Fused attention (FlashAttention): no stored scores.")
    dtype: Literal["bf16", "fp16"] = "bf16"


@dataclass(frozen=True)
class ResolvedTraining:
    model: LLMSpec
    cluster: ClusterSpec
    global_batch_size: int
    micro_batch_size: int
    sequence_length_tokens: int
    data_parallel: int
    tensor_parallel: int
    pipeline_parallel: int
    sequence_parallel_degree: int
    zero_stage: int
    virtual_stages: int
    sequence_parallel: str
    recompute: str
    pipeline_schedule: str
    activation_offload: str
    overlap_grad_reduce: bool
    flash_attention: bool
    dtype: str


def engine_inputs(r: ResolvedTraining) -> tuple[ModelArrays, ClusterArrays, PlanArrays]:
    """The engine's three inputs from a resolved scenario (numeric leaves may be arrays in a sweep)."""
    plan = PlanArrays(
        global_batch_size=np.asarray(r.global_batch_size, dtype=float),
        micro_batch_size=np.asarray(r.micro_batch_size, dtype=float),
        sequence_length=np.asarray(r.sequence_length_tokens, dtype=float),
        data_parallel=np.asarray(r.data_parallel, dtype=float),
        tensor_parallel=np.asarray(r.tensor_parallel, dtype=float),
        pipeline_parallel=np.asarray(r.pipeline_parallel, dtype=float),
        sequence_parallel=float(SEQUENCE_PARALLEL_CODES[r.sequence_parallel]),
        sequence_parallel_degree=np.asarray(r.sequence_parallel_degree, dtype=float),
        zero_stage=np.asarray(r.zero_stage, dtype=float),
        recompute=float(RECOMPUTE_CODES[r.recompute]),
        pipeline_schedule=float(SCHEDULE_CODES[r.pipeline_schedule]),
        virtual_stages=np.asarray(r.virtual_stages, dtype=float),
        activation_offload=float(OFFLOAD_CODES[r.activation_offload]),
        overlap_grad_reduce=1.0 if r.overlap_grad_reduce else 0.0,
        flash_attention=1.0 if r.flash_attention else 0.0,
    )
    return ModelArrays.from_llm(r.model), ClusterArrays.from_spec(r.cluster, dtype=r.dtype), plan


_METRICS: dict[str, MetricSpec] = {
    "iteration_time_s": MetricSpec(
        label="Iteration time",
        unit="s",
        formula="M*t_stage,max + bubble + DP sync (exposed) + optimizer step",
    ),
    "tokens_per_s": MetricSpec(label="Throughput", unit="tokens/s", formula="B*s / T_iter"),
    "model_flops_utilization": MetricSpec(
        label="Model FLOPs utilisation", unit="fraction", formula="B*s*(6N + 12*L*h*s) / (T_iter * GPUs * peak)"
    ),
    "achieved_flops_per_gpu": MetricSpec(
        label="Achieved FLOP/s per GPU",
        unit="FLOP/s",
        formula="executed FLOP (with recomputation) / (T_iter * GPUs); Narayanan et al. 2021",
    ),
    "memory_total_bytes": MetricSpec(
        label="Peak memory per GPU", unit="bytes", formula="states + activations + buffers"
    ),
    "memory_headroom_bytes": MetricSpec(label="Memory headroom", unit="bytes", formula="GPU memory - peak memory"),
    "memory_weights_bytes": MetricSpec(label="Weights", unit="bytes", formula="2 bytes/param, /dp with ZeRO-3"),
    "memory_gradients_bytes": MetricSpec(label="Gradients", unit="bytes", formula="2 bytes/param, /dp with ZeRO-2+"),
    "memory_optimizer_bytes": MetricSpec(
        label="Optimizer state", unit="bytes", formula="12 bytes/param, /dp with ZeRO-1+"
    ),
    "memory_activations_bytes": MetricSpec(
        label="Activations", unit="bytes", formula="in-flight micro-batches x layers/stage x Korthikanti bytes/layer"
    ),
    "memory_buffers_bytes": MetricSpec(label="Buffers", unit="bytes", formula="logits, masks, comm and ZeRO-3 buffers"),
    "memory_offloaded_bytes": MetricSpec(label="Activations on SSD", unit="bytes", formula="SSDTrain rule"),
    "fits": MetricSpec(label="Fits in GPU memory", unit="1 = yes", formula="peak memory <= GPU memory"),
    "reasons": MetricSpec(label="Invalid-plan reason bits", unit="bitmask", formula="0 = valid"),
    "time_forward_s": MetricSpec(label="Forward", unit="s"),
    "time_backward_s": MetricSpec(label="Backward", unit="s"),
    "time_recompute_s": MetricSpec(label="Recomputation", unit="s"),
    "time_tensor_parallel_s": MetricSpec(label="TP collectives", unit="s"),
    "time_sequence_parallel_s": MetricSpec(label="Sequence-parallel collectives", unit="s"),
    "time_pipeline_send_s": MetricSpec(label="Pipeline sends", unit="s"),
    "time_zero_gather_s": MetricSpec(label="ZeRO-3 gathers (exposed)", unit="s"),
    "time_offload_stall_s": MetricSpec(label="SSD stall", unit="s"),
    "time_bubble_s": MetricSpec(label="Pipeline bubble", unit="s", formula="(p-1) * t_stage / v"),
    "time_data_parallel_s": MetricSpec(label="DP gradient sync (exposed)", unit="s"),
    "time_optimizer_s": MetricSpec(label="Optimizer step", unit="s", formula="28 bytes/param / memory bandwidth"),
    "bubble_fraction": MetricSpec(
        label="Bubble fraction", unit="fraction", formula="(p-1)/(v*M + p-1) for equal stages"
    ),
    "micro_batches": MetricSpec(label="Micro-batches per replica", unit="count", formula="B / (b * dp)"),
    "offloaded_layers": MetricSpec(label="Layers offloaded per stage", unit="count"),
}

_TIME_PARTS = (
    "time_forward_s",
    "time_backward_s",
    "time_recompute_s",
    "time_tensor_parallel_s",
    "time_sequence_parallel_s",
    "time_pipeline_send_s",
    "time_zero_gather_s",
    "time_offload_stall_s",
    "time_bubble_s",
    "time_data_parallel_s",
    "time_optimizer_s",
)
_MEMORY_PARTS = (
    "memory_weights_bytes",
    "memory_gradients_bytes",
    "memory_optimizer_bytes",
    "memory_activations_bytes",
    "memory_buffers_bytes",
)

#: Narayanan et al. (SC'21) Table 1: model id -> (t, p, GPUs, global batch, achieved TFLOP/s per GPU).
NARAYANAN_TABLE1: dict[str, tuple[int, int, int, int, float]] = {
    "megatron-gpt-1.7b": (1, 1, 32, 512, 137.0),
    "megatron-gpt-3.6b": (2, 1, 64, 512, 138.0),
    "megatron-gpt-7.5b": (4, 1, 128, 512, 142.0),
    "megatron-gpt-18.4b": (8, 1, 256, 1024, 135.0),
    "megatron-gpt-39.1b": (8, 2, 512, 1536, 138.0),
    "megatron-gpt-76.1b": (8, 4, 1024, 1792, 140.0),
    "megatron-gpt-145.6b": (8, 8, 1536, 2304, 148.0),
    "megatron-gpt-310.1b": (8, 16, 1920, 2160, 155.0),
    "megatron-gpt-529.6b": (8, 35, 2520, 2520, 163.0),
    "megatron-gpt-1t": (8, 64, 3072, 3072, 163.0),
}


class TrainingKind(ScenarioKind[TrainingInputs, ResolvedTraining]):
    kind = "training"
    title = "Parallel LLM training plan"
    description = (
        "Memory per GPU, iteration time and its breakdown, and a timeline of one iteration for a plan "
        "of data, tensor, pipeline and sequence parallelism with ZeRO, recomputation, pipeline schedules "
        "and SSD activation offload."
    )
    engine_version = "training-1"
    inputs_model = TrainingInputs
    metric_specs = _METRICS

    def resolve(self, inputs: TrainingInputs, catalog: Catalog) -> ResolvedTraining:
        c = inputs.cluster
        ssd = None if c.ssd is None else preset_or_inline(catalog, "ssds", c.ssd, "cluster.ssd")
        if inputs.activation_offload != "none" and (ssd is None or c.ssds_per_node == 0):
            raise InputError("activation_offload", "activation offload needs cluster.ssd and cluster.ssds_per_node > 0")
        matrix = None
        if c.node_pair_bandwidth_gb_per_s is not None:
            rows = c.node_pair_bandwidth_gb_per_s
            if len(rows) != c.nodes or any(len(row) != c.nodes for row in rows):
                raise InputError("cluster.node_pair_bandwidth_gb_per_s", f"must be a {c.nodes} x {c.nodes} matrix")
            matrix = tuple(tuple(x * GB for x in row) for row in rows)
        accelerator: AcceleratorSpec = preset_or_inline(catalog, "accelerators", c.accelerator, "cluster.accelerator")
        link = c.intra_node_link if c.intra_node_link is not None else accelerator.intra_node_link_id
        if link is None:
            raise InputError("cluster.intra_node_link", f"{accelerator.id} names no default link; give one")
        cluster = ClusterSpec(
            nodes=c.nodes,
            gpus_per_node=c.gpus_per_node,
            accelerator=accelerator,
            intra_node_link=preset_or_inline(catalog, "interconnects", link, "cluster.intra_node_link"),
            inter_node_link=preset_or_inline(catalog, "interconnects", c.inter_node_link, "cluster.inter_node_link"),
            inter_node_links_per_node=c.inter_node_links_per_node,
            ssd=ssd,
            ssds_per_node=c.ssds_per_node,
            node_pair_bandwidth_bytes_per_s=matrix,
        )
        fields = inputs.model_dump(exclude={"model", "cluster"})
        resolved = ResolvedTraining(
            model=preset_or_inline(catalog, "llms", inputs.model, "model"), cluster=cluster, **fields
        )
        model, cluster_arrays, plan = engine_inputs(resolved)
        code = int(np.asarray(plan_reasons(model=model, cluster=cluster_arrays, plan=plan)).reshape(-1)[0])
        if code:
            reason = describe_reasons(code)[0]
            detail = (
                f"{inputs.data_parallel} x {inputs.tensor_parallel} x {inputs.pipeline_parallel} x "
                f"{resolved.sequence_parallel_degree} != {cluster.gpus} GPUs"
                if reason.name == "GPU_COUNT"
                else ""
            )
            raise InputError(reason.field, reason.message + (f" ({detail})" if detail else ""))
        return resolved

    def compute(self, resolved: ResolvedTraining) -> dict[str, Any]:
        model, cluster, plan = engine_inputs(resolved)
        result = evaluate_plans(model=model, cluster=cluster, plan=plan)
        metrics: dict[str, Any] = {k: getattr(result, k) for k in _METRICS if k not in ("fits", "reasons")}
        metrics["fits"] = result.fits.astype(float)
        metrics["reasons"] = result.reasons.astype(float)
        return metrics

    def evaluate(self, resolved: ResolvedTraining) -> EvaluationResult:
        model, cluster, plan = engine_inputs(resolved)
        r = evaluate_plans(model=model, cluster=cluster, plan=plan)
        f = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in r.as_dict().items()}
        fits = bool(np.asarray(r.fits).reshape(-1)[0])
        gpus = resolved.cluster.gpus
        capacity = resolved.cluster.accelerator.memory_capacity_bytes
        metrics = [
            self.metric("iteration_time_s", f["iteration_time_s"], M=f["micro_batches"], bubble_s=f["time_bubble_s"]),
            self.metric(
                "tokens_per_s", f["tokens_per_s"], B=resolved.global_batch_size, s=resolved.sequence_length_tokens
            ),
            self.metric("model_flops_utilization", f["model_flops_utilization"], GPUs=gpus),
            self.metric("achieved_flops_per_gpu", f["achieved_flops_per_gpu"], GPUs=gpus),
            self.metric("memory_total_bytes", f["memory_total_bytes"], capacity_bytes=capacity),
            self.metric("memory_headroom_bytes", f["memory_headroom_bytes"]),
            self.metric("fits", 1.0 if fits else 0.0),
            self.metric(
                "bubble_fraction", f["bubble_fraction"], p=resolved.pipeline_parallel, v=resolved.virtual_stages
            ),
            self.metric("micro_batches", f["micro_batches"]),
        ]
        metrics += [self.metric(k, f[k]) for k in (*_MEMORY_PARTS, "memory_offloaded_bytes")]
        metrics += [self.metric(k, f[k]) for k in _TIME_PARTS]
        if resolved.activation_offload != "none":
            metrics.append(self.metric("offloaded_layers", f["offloaded_layers"]))
        memory_rows: list[list[float | int | str | bool | None]] = [
            [_METRICS[k].label, f[k], f[k] / GIB] for k in _MEMORY_PARTS
        ]
        memory_rows.append(["Total (peak stage)", f["memory_total_bytes"], f["memory_total_bytes"] / GIB])
        memory_rows.append(["Removed by SSD offload", f["memory_offloaded_bytes"], f["memory_offloaded_bytes"] / GIB])
        time_rows: list[list[float | int | str | bool | None]] = [
            [_METRICS[k].label, f[k], f[k] / f["iteration_time_s"]] for k in _TIME_PARTS
        ]
        layer_rows: list[list[float | int | str | bool | None]] = [
            ["Activation bytes per layer per micro-batch (kept)", f["layer_activation_bytes"]],
            ["TP bytes sent per layer per micro-batch (forward)", f["tensor_parallel_bytes_per_layer"]],
            [
                "Sequence-parallel bytes sent per layer per micro-batch (forward)",
                f["sequence_parallel_bytes_per_layer"],
            ],
            ["Pipeline send per micro-batch (s)", f["pipeline_send_s"]],
            ["SSD writes per node (bytes/s)", f["ssd_write_bytes_per_s_per_node"]],
            [
                "SSD rated lifetime at this rate (years)",
                # The engine says inf when nothing is written; JSON has no infinity, so say it in words.
                f["ssd_lifetime_years"] if np.isfinite(f["ssd_lifetime_years"]) else "unlimited (no SSD writes)",
            ],
        ]
        tables = [
            Table(
                key="memory",
                title="Memory per GPU",
                columns=_columns(("component", ""), ("bytes", "bytes"), ("GiB", "GiB")),
                rows=memory_rows,
            ),
            Table(
                key="time",
                title="Iteration time",
                columns=_columns(("component", ""), ("seconds", "s"), ("share", "fraction")),
                rows=time_rows,
            ),
            Table(
                key="per_layer",
                title="Per layer and per link",
                columns=_columns(("quantity", ""), ("value", "")),
                rows=layer_rows,
            ),
        ]
        figures = [
            _figure(
                "memory",
                "Memory per GPU",
                memory_breakdown_figure([(_METRICS[k].label, f[k]) for k in _MEMORY_PARTS], capacity),
            ),
            _figure(
                "time",
                "Iteration time breakdown",
                time_breakdown_figure([(_METRICS[k].label, f[k]) for k in _TIME_PARTS]),
            ),
        ]
        notes = [
            f"Fits: {f['memory_headroom_bytes'] / GIB:.1f} GiB to spare per GPU."
            if fits
            else f"Does not fit: {-f['memory_headroom_bytes'] / GIB:.1f} GiB short per GPU.",
            f"Rank order tp -> sequence -> dp -> pp (Megatron-LM); {gpus} GPUs on {resolved.cluster.nodes} node(s).",
        ]
        try:
            timeline = simulate_timeline(
                schedule=SCHEDULE_CODES[resolved.pipeline_schedule],
                stages=resolved.pipeline_parallel,
                micro_batches=round(f["micro_batches"]),
                virtual_stages=resolved.virtual_stages,
                chunk_forward_s=f["chunk_forward_s"],
                chunk_backward_s=f["chunk_backward_s"],
                send_s=f["pipeline_send_s"],
                last_stage_extra_forward_s=f["last_stage_extra_forward_s"],
                last_stage_extra_backward_s=f["last_stage_extra_backward_s"],
                data_parallel_s=f["time_data_parallel_s"],
                optimizer_s=f["time_optimizer_s"],
            )
            if len(timeline.events) <= MAX_TIMELINE_ROWS:
                tables.append(
                    Table(
                        key="timeline",
                        title="Timeline of one iteration",
                        columns=_columns(
                            ("stage", ""),
                            ("kind", ""),
                            ("micro_batch", ""),
                            ("chunk", ""),
                            ("start", "s"),
                            ("end", "s"),
                        ),
                        rows=[[e.stage, e.kind, e.micro_batch, e.chunk, e.start_s, e.end_s] for e in timeline.events],
                    )
                )
            else:
                notes.append(f"Timeline table left out: {len(timeline.events)} rows (at most {MAX_TIMELINE_ROWS}).")
            figures.append(
                _figure(
                    "timeline",
                    "Timeline of one iteration",
                    timeline_figure(timeline.events, resolved.pipeline_parallel),
                )
            )
            notes.append(
                f"Timeline replay: {timeline.iteration_end_s:.4g} s per iteration vs the closed form's "
                f"{f['iteration_time_s']:.4g} s (they differ only through unequal stages)."
            )
        except ValueError as exc:
            notes.append(f"No timeline drawn: {exc}; at most {MAX_TIMELINE_OPERATIONS} operations.")
        comparison = sequence_parallel_comparison(resolved)
        tables.append(comparison.table)
        figures.append(_figure("sequence_parallel", comparison.title, comparison.figure))
        notes.append(comparison.note)
        return EvaluationResult(
            kind=self.kind,
            engine_version=self.engine_version,
            feasible=fits,
            metrics=metrics,
            tables=tables,
            charts=figures,
            notes=notes,
            references=_references(resolved, f),
        )

    def examples(self) -> list[dict[str, Any]]:
        def doc(name: str, **inputs: Any) -> dict[str, Any]:
            return {"schema_version": 1, "kind": "training", "name": name, "inputs": inputs}

        a100_cluster = {"accelerator": "a100-80gb", "inter_node_link": "ib-hdr"}
        return [
            doc(
                "Megatron-LM GPT 145.6B on 1536 A100s (Narayanan et al. SC'21, Table 1)",
                model="megatron-gpt-145.6b",
                cluster={**a100_cluster, "nodes": 192},
                global_batch_size=2304,
                micro_batch_size=2,
                data_parallel=24,
                tensor_parallel=8,
                pipeline_parallel=8,
                recompute="full",
                pipeline_schedule="interleaved",
                virtual_stages=2,
                overlap_grad_reduce=False,
            ),
            doc(
                "What do Ring Self-Attention and DeepSpeed-Ulysses each cost as the sequence grows? "
                "(Llama-2 7B, 32K tokens, 8 H100s, ZeRO-3, FlashAttention)",
                model="llama2-7b",
                cluster={
                    "accelerator": "h100-sxm",
                    "intra_node_link": "nvlink4",
                    "inter_node_link": "ib-ndr",
                    "nodes": 1,
                },
                global_batch_size=8,
                micro_batch_size=1,
                sequence_length_tokens=32768,
                sequence_parallel="ulysses",
                sequence_parallel_degree=8,
                zero_stage=3,
                flash_attention=True,
            ),
            doc(
                "Megatron-LM GPT 1.7B on 32 A100s (Narayanan et al. SC'21, Table 1)",
                model="megatron-gpt-1.7b",
                cluster={**a100_cluster, "nodes": 4},
                global_batch_size=512,
                micro_batch_size=16,
                data_parallel=32,
                recompute="full",
            ),
            doc(
                "GPT 22B layer setting with selective recomputation and sequence parallelism (Korthikanti et al. 2022)",
                model={
                    "id": "korthikanti-gpt-22b",
                    "name": "GPT 22B (Korthikanti et al. 2022, Table 3)",
                    "source": "Korthikanti et al. 2022, Table 3: 48 layers, hidden 6144, 64 heads, seq 2048",
                    "hidden_size": 6144,
                    "num_layers": 48,
                    "num_heads": 64,
                    "num_kv_heads": 64,
                    "ffn_hidden_size": 24576,
                    "ffn_kind": "gelu",
                    "vocab_size": 51200,
                    "tied_embeddings": True,
                    "max_context_tokens": 2048,
                    "position_embedding": "learned",
                    "norm_kind": "layernorm",
                    "linear_bias": True,
                    "published_params_count": 22e9,
                    "published_params_source": "Korthikanti et al. 2022, Table 3",
                    "published_params_rounding_half_step": 5e8,
                },
                cluster={**a100_cluster, "nodes": 1},
                global_batch_size=4,
                micro_batch_size=4,
                tensor_parallel=8,
                sequence_parallel="megatron",
                recompute="selective",
            ),
            doc(
                "GPT-3 6.7B on 8 A100s, ZeRO-2: micro-batch 2 fits only with activations on Optane SSDs (SSDTrain)",
                model="gpt3-7b",
                cluster={**a100_cluster, "nodes": 1, "ssd": "optane-p5800x", "ssds_per_node": 16},
                global_batch_size=64,
                micro_batch_size=2,
                data_parallel=8,
                zero_stage=2,
                activation_offload="adaptive",
            ),
        ]


@dataclass(frozen=True)
class SequenceParallelComparison:
    """Sequence-parallel kinds x sequence lengths for one scenario: a table, a figure, a note."""

    title: str
    degree: int
    sequence_lengths: list[int]
    #: kind -> metric -> one value per sequence length (NaN where the plan is invalid).
    series: dict[str, dict[str, list[float]]]
    table: Table
    figure: dict[str, Any]
    note: str


def _comparison_degree(r: ResolvedTraining) -> int:
    """GPUs a Ring/Ulysses sequence group spans: the scenario's degree, else the largest divisor of
    the data-parallel degree that fits in a node beside TP (else up to a node's GPU count),
    preferring one that also divides the heads per TP rank (Ulysses' rule); 1 when dp is 1."""
    if r.sequence_parallel_degree > 1:
        return r.sequence_parallel_degree
    heads_per_tp = r.model.num_heads // r.tensor_parallel
    kv_per_tp = max(r.model.num_kv_heads // r.tensor_parallel, 1)
    room = max(r.cluster.gpus_per_node // r.tensor_parallel, 1)
    for limit in (room, r.cluster.gpus_per_node):
        for heads_rule in (True, False):
            fitting = [
                n
                for n in range(2, min(r.data_parallel, limit) + 1)
                if r.data_parallel % n == 0 and (not heads_rule or (heads_per_tp % n == 0 and kv_per_tp % n == 0))
            ]
            if fitting:
                return max(fitting)
    return 1


def sequence_parallel_comparison(r: ResolvedTraining) -> SequenceParallelComparison:
    """None / Megatron-SP / Ring / Ulysses over a range of sequence lengths, in ONE engine call.

    The GPUs stay the scenario's: the sequence group of N GPUs (Ring, Ulysses) is carved out of the
    data-parallel GPUs (dp' = dp*n/N), and without it (none, Megatron-SP) those GPUs do data
    parallelism (dp' = dp*n). Global and micro-batch stay; the sequence length varies.
    """
    degree = _comparison_degree(r)
    # Without data-parallel GPUs to carve a sequence group from, only none and Megatron-SP compare.
    compared = SEQUENCE_PARALLEL_KINDS if degree > 1 else SEQUENCE_PARALLEL_KINDS[:2]
    replicas = r.data_parallel * r.sequence_parallel_degree  # GPUs per (TP, PP) cell
    lengths = sorted({max(int(r.sequence_length_tokens * k), 1) for k in SEQUENCE_LENGTH_FACTORS})
    kinds = np.asarray([SEQUENCE_PARALLEL_CODES[k] for k in compared], dtype=float)[:, None]
    spread = np.asarray([1 if k in ("none", "megatron") else degree for k in compared], dtype=float)
    model, cluster, plan = engine_inputs(r)
    plan = replace(
        plan,
        sequence_parallel=kinds,
        sequence_parallel_degree=spread[:, None],
        data_parallel=(replicas / spread)[:, None],
        sequence_length=np.asarray(lengths, dtype=float)[None, :],
    )
    result = evaluate_plans(model=model, cluster=cluster, plan=plan)
    keys = {
        "sp_bytes": "sequence_parallel_bytes_per_layer",
        "tp_bytes": "tensor_parallel_bytes_per_layer",
        "sp_time": "time_sequence_parallel_s",
        "tp_time": "time_tensor_parallel_s",
        "activation_bytes": "memory_activations_bytes",
        "memory_bytes": "memory_total_bytes",
        "iteration_s": "iteration_time_s",
        "tokens_per_s": "tokens_per_s",
    }
    grid = {name: np.asarray(getattr(result, key), dtype=float) for name, key in keys.items()}
    reasons = np.asarray(result.reasons)
    fits = np.asarray(result.fits)
    series: dict[str, dict[str, list[float]]] = {
        kind: {name: [float(v) for v in values[i]] for name, values in grid.items()} for i, kind in enumerate(compared)
    }
    rows: list[list[float | int | str | bool | None]] = []
    for i, kind in enumerate(compared):
        for j, length in enumerate(lengths):
            code = int(reasons[i, j])
            structural = [x.name for x in reasons_of(code) if x.name != "OUT_OF_MEMORY"]

            def cell(name: str, scale: float = 1.0, i: int = i, j: int = j) -> float | None:
                value = float(grid[name][i, j])
                return value / scale if np.isfinite(value) else None

            rows.append(
                [
                    kind,
                    length,
                    int(spread[i]),
                    int(replicas // spread[i]),
                    cell("sp_bytes", 2.0**20),
                    cell("tp_bytes", 2.0**20),
                    cell("sp_time"),
                    cell("tp_time"),
                    cell("activation_bytes", GIB),
                    cell("memory_bytes", GIB),
                    cell("iteration_s"),
                    bool(fits[i, j]),
                    ", ".join(structural) or ("" if fits[i, j] else "OUT_OF_MEMORY"),
                ]
            )
    table = Table(
        key="sequence_parallel",
        title=f"Sequence-parallel kinds by sequence length (Ring/Ulysses over {degree} GPUs)",
        columns=[
            Column(key="kind", label="sequence parallelism"),
            Column(key="sequence_length", label="sequence length", unit="tokens"),
            Column(key="degree", label="sequence degree", unit="GPUs"),
            Column(key="data_parallel", label="data parallel", unit="GPUs"),
            Column(key="sp_bytes", label="sequence-parallel bytes sent per layer per micro-batch (fwd)", unit="MiB"),
            Column(key="tp_bytes", label="TP bytes sent per layer per micro-batch (fwd)", unit="MiB"),
            Column(key="sp_time", label="sequence-parallel collectives per iteration", unit="s"),
            Column(key="tp_time", label="TP collectives per iteration", unit="s"),
            Column(key="activations", label="activations per GPU", unit="GiB"),
            Column(key="memory", label="peak memory per GPU", unit="GiB"),
            Column(key="iteration", label="iteration time", unit="s"),
            Column(key="fits", label="fits"),
            Column(key="why_not", label="why not"),
        ],
        rows=rows,
    )
    title = f"Sequence parallelism vs sequence length (Ring/Ulysses over {degree} GPUs)"
    figure = sequence_parallel_figure(
        lengths, series, capacity_bytes=r.cluster.accelerator.memory_capacity_bytes, title=title
    )
    note = _sequence_parallel_note(lengths, series, fits, degree, r.sequence_length_tokens, r.tensor_parallel)
    return SequenceParallelComparison(
        title=title,
        degree=degree,
        sequence_lengths=lengths,
        series=series,
        table=table,
        figure=figure,
        note=note,
    )


def _sequence_parallel_note(
    lengths: list[int],
    series: dict[str, dict[str, list[float]]],
    fits: NDArray[np.bool_],
    degree: int,
    here: int,
    tensor_parallel: int,
) -> str:
    """At the scenario's length: bytes sent per layer and iteration time of each kind; over the
    range: the longest sequence each kind fits."""
    j = lengths.index(here)
    parts = []
    if tensor_parallel == 1:
        parts.append("megatron: splits the sequence only inside the TP group, so with tp = 1 it is none")
    if degree == 1:
        parts.append("ring, ulysses: no data-parallel GPUs to form a sequence group from (dp = 1)")
    for i, kind in enumerate(series):
        values = series[kind]
        sent = values["sp_bytes"][j] + values["tp_bytes"][j]
        longest = [length for length, f in zip(lengths, fits[i], strict=True) if f]
        reach = f"fits up to {longest[-1]:,} tokens" if longest else f"fits none of {lengths[0]:,}-{lengths[-1]:,}"
        if not np.isfinite(sent):
            parts.append(f"{kind}: not a valid plan at {here:,} tokens, {reach}")
            continue
        parts.append(
            f"{kind}: {sent / 2.0**20:,.0f} MiB per layer, {values['iteration_s'][j]:.3g} s per iteration, {reach}"
        )
    return (
        f"Sequence parallelism at {here:,} tokens (Ring/Ulysses over {degree} GPUs; bytes each GPU sends per layer "
        "and micro-batch in forward, sequence-parallel + TP collectives): "
        + "; ".join(parts)
        + ". At a fixed degree every kind's bytes grow in proportion to the sequence; Ring sends 2(N-1)/N*b*s*h_kv "
        "elements of K and V, Ulysses 4(N-1)/N^2*b*s*h of Q, K, V and output, N/2 times less with MHA."
    )


def _columns(*pairs: tuple[str, str]) -> list[Column]:
    return [Column(key=key, label=key.replace("_", " "), unit=unit) for key, unit in pairs]


def _figure(key: str, title: str, figure: dict[str, Any]) -> Chart:
    return Chart(key=key, title=title, figure=figure)


def _references(resolved: ResolvedTraining, f: dict[str, float]) -> list[dict[str, Any]]:
    refs: list[dict[str, Any]] = []
    row = NARAYANAN_TABLE1.get(resolved.model.id)
    if row is not None:
        t, p, gpus, batch, published = row
        same = (
            resolved.tensor_parallel,
            resolved.pipeline_parallel,
            resolved.cluster.gpus,
            resolved.global_batch_size,
        ) == (
            t,
            p,
            gpus,
            batch,
        )
        refs.append(
            {
                "source": "Narayanan et al., SC'21, Table 1 (A100, seq 2048, full recomputation)",
                "quantity": "achieved TFLOP/s per GPU",
                "published": published,
                "engine": f["achieved_flops_per_gpu"] / 1e12,
                "same_plan": same,
            }
        )
    spec = resolved.model
    gpt_layer = (
        spec.ffn_kind == "gelu" and spec.num_kv_heads == spec.num_heads and spec.ffn_hidden_size == 4 * spec.hidden_size
    )
    if gpt_layer and not resolved.flash_attention:
        refs.append(
            {
                "source": "Korthikanti et al. 2022, Table 2 (activation bytes per layer)",
                "quantity": "activation bytes per layer per micro-batch",
                "published": korthikanti_table2_bytes(
                    s=float(resolved.sequence_length_tokens),
                    b=float(resolved.micro_batch_size),
                    h=float(spec.hidden_size),
                    a=float(spec.num_heads),
                    t=float(resolved.tensor_parallel),
                    sequence_parallel=resolved.sequence_parallel == "megatron",
                    recompute=resolved.recompute,
                )
                if resolved.sequence_parallel in ("none", "megatron")
                and not (resolved.recompute == "full" and resolved.sequence_parallel == "megatron")
                else None,
                "engine": f["layer_activation_bytes"],
            }
        )
    return refs


KIND = TrainingKind()

__all__ = ["KIND", "ClusterInputs", "ResolvedTraining", "TrainingInputs"]
