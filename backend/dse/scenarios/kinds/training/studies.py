"""What a training scenario shows beyond its metrics: the memory, time and per-layer tables, the
timeline of one iteration, and the sequence-parallel comparison over sequence lengths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dse.engines.training.codes import SCHEDULE_CODES
from dse.engines.training.sequence_parallel import (
    SequenceParallelComparison,
    comparison_degree,
)
from dse.engines.training.sequence_parallel import sequence_parallel_comparison as compare_sequence_parallel
from dse.engines.training.timeline import MAX_TIMELINE_OPERATIONS, simulate_timeline
from dse.engines.training.validity import OUT_OF_MEMORY, describe_reasons
from dse.scenarios.base import Chart, Column, Table
from dse.scenarios.kinds.training.charts import (
    memory_breakdown_chart,
    sequence_parallel_chart,
    time_breakdown_chart,
    timeline_chart,
)
from dse.scenarios.kinds.training.inputs import ResolvedTraining, engine_inputs
from dse.scenarios.kinds.training.metrics import MEMORY_PARTS, METRICS, TIME_PARTS

GIB = 2.0**30
#: Rows of the timeline table in one answer (the chart has no such limit below MAX_TIMELINE_OPERATIONS).
MAX_TIMELINE_ROWS = 10_000

Row = list[float | int | str | bool | None]


def columns(*pairs: tuple[str, str]) -> list[Column]:
    return [Column(key=key, label=key.replace("_", " "), unit=unit) for key, unit in pairs]


def breakdown_tables(f: dict[str, float]) -> list[Table]:
    """Memory per GPU, iteration time and the per-layer quantities of one design point."""
    memory_rows: list[Row] = [[METRICS[k].label, f[k], f[k] / GIB] for k in MEMORY_PARTS]
    memory_rows.append(["Total (peak stage)", f["memory_total_bytes"], f["memory_total_bytes"] / GIB])
    memory_rows.append(["Removed by SSD offload", f["memory_offloaded_bytes"], f["memory_offloaded_bytes"] / GIB])
    time_rows: list[Row] = [[METRICS[k].label, f[k], f[k] / f["iteration_time_s"]] for k in TIME_PARTS]
    layer_rows: list[Row] = [
        ["Activation bytes per layer per micro-batch (kept)", f["layer_activation_bytes"]],
        ["TP bytes sent per layer per micro-batch (forward)", f["tensor_parallel_bytes_per_layer"]],
        [
            "Sequence-parallel bytes sent per layer per micro-batch (forward)",
            f["sequence_parallel_bytes_per_layer"],
        ],
        ["Context-parallel K/V bytes sent per layer per micro-batch (forward)", f["context_parallel_bytes_per_layer"]],
        ["First / middle / last stage per micro-batch (s)", _stage_times_text(f)],
        ["Pipeline send per micro-batch (s)", f["pipeline_send_s"]],
        ["SSD writes per node (bytes/s)", f["ssd_write_bytes_per_s_per_node"]],
        [
            "SSD rated lifetime at this rate (years)",
            # The engine says inf when nothing is written; JSON has no infinity, so say it in words.
            f["ssd_lifetime_years"] if np.isfinite(f["ssd_lifetime_years"]) else "unlimited (no SSD writes)",
        ],
    ]
    return [
        Table(
            key="memory",
            title="Memory per GPU",
            columns=columns(("component", ""), ("bytes", "bytes"), ("GiB", "GiB")),
            rows=memory_rows,
        ),
        Table(
            key="time",
            title="Iteration time",
            columns=columns(("component", ""), ("seconds", "s"), ("share", "fraction")),
            rows=time_rows,
        ),
        Table(
            key="per_layer",
            title="Per layer and per link",
            columns=columns(("quantity", ""), ("value", "")),
            rows=layer_rows,
        ),
    ]


def _stage_times_text(f: dict[str, float]) -> str:
    middle = f"{f['middle_stage_s']:.4g}" if np.isfinite(f["middle_stage_s"]) else "-"
    return f"{f['first_stage_s']:.4g} / {middle} / {f['last_stage_s']:.4g}"


def breakdown_charts(f: dict[str, float], capacity_bytes: float) -> list[Chart]:
    return [
        Chart(
            key="memory",
            title="Memory per GPU",
            figure=memory_breakdown_chart([(METRICS[k].label, f[k]) for k in MEMORY_PARTS], capacity_bytes),
        ),
        Chart(
            key="time",
            title="Iteration time breakdown",
            figure=time_breakdown_chart([(METRICS[k].label, f[k]) for k in TIME_PARTS]),
        ),
    ]


@dataclass(frozen=True)
class TimelineStudy:
    tables: list[Table]
    charts: list[Chart]
    notes: list[str]


def timeline_study(resolved: ResolvedTraining, f: dict[str, float]) -> TimelineStudy:
    """One iteration replayed operation by operation: a table (when not too long), a chart, a note."""
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
            first_stage_extra_forward_s=f["first_stage_extra_forward_s"],
            first_stage_extra_backward_s=f["first_stage_extra_backward_s"],
            context_parallel_forward_s=f["chunk_context_parallel_forward_s"],
            context_parallel_backward_s=f["chunk_context_parallel_backward_s"],
            data_parallel_s=f["time_data_parallel_s"],
            optimizer_s=f["time_optimizer_s"],
            chunk_forward_all_to_all_s=f.get("chunk_forward_all_to_all_s", 0.0),
            chunk_backward_all_to_all_s=f.get("chunk_backward_all_to_all_s", 0.0),
        )
    except ValueError as exc:
        return TimelineStudy([], [], [f"No timeline drawn: {exc}; at most {MAX_TIMELINE_OPERATIONS} operations."])
    tables: list[Table] = []
    notes: list[str] = []
    if len(timeline.events) <= MAX_TIMELINE_ROWS:
        tables.append(
            Table(
                key="timeline",
                title="Timeline of one iteration",
                columns=columns(
                    ("stage", ""),
                    ("operation", ""),
                    ("micro_batch", ""),
                    ("chunk", ""),
                    ("start", "s"),
                    ("end", "s"),
                ),
                rows=[[e.stage, e.operation, e.micro_batch, e.chunk, e.start_s, e.end_s] for e in timeline.events],
            )
        )
    else:
        notes.append(f"Timeline table left out: {len(timeline.events)} rows (at most {MAX_TIMELINE_ROWS}).")
    charts = [
        Chart(
            key="timeline",
            title="Timeline of one iteration",
            figure=timeline_chart(timeline.events, resolved.pipeline_parallel),
        )
    ]
    notes.append(
        f"Timeline replay: {timeline.iteration_end_s:.4g} s per iteration vs the closed form's "
        f"{f['iteration_time_s']:.4g} s (they differ only through unequal stages)."
    )
    return TimelineStudy(tables, charts, notes)


def sequence_parallel_comparison(r: ResolvedTraining) -> SequenceParallelComparison:
    """The engine's comparison of the sequence-parallel variants for this scenario's plan (one engine call)."""
    degree = comparison_degree(
        sequence_parallel_degree=r.sequence_parallel_degree,
        data_parallel=r.data_parallel,
        tensor_parallel=r.tensor_parallel,
        gpus_per_node=r.cluster.gpus_per_node,
        num_heads=r.model.num_heads,
        num_kv_heads=r.model.num_kv_heads,
    )
    model, cluster, plan = engine_inputs(r)
    return compare_sequence_parallel(
        model=model,
        cluster=cluster,
        plan=plan,
        degree=degree,
        data_parallel=r.data_parallel,
        sequence_parallel_degree=r.sequence_parallel_degree,
        sequence_length=r.sequence_length_tokens,
    )


@dataclass(frozen=True)
class SequenceParallelStudy:
    """The comparison as the answer shows it: a table, a chart, a note."""

    comparison: SequenceParallelComparison
    title: str
    table: Table
    chart: Chart
    note: str


def sequence_parallel_study(r: ResolvedTraining) -> SequenceParallelStudy:
    comparison = sequence_parallel_comparison(r)
    degree, lengths, series = comparison.degree, comparison.sequence_lengths, comparison.series
    rows: list[Row] = []
    for i, variant in enumerate(comparison.variants):
        values = series[variant]
        for j, length in enumerate(lengths):
            code = int(comparison.reasons[i, j])
            fits = bool(comparison.fits[i, j])
            structural = [x.message for x in describe_reasons(code) if x.name != "OUT_OF_MEMORY"]

            def cell(
                name: str, scale: float = 1.0, values: dict[str, list[float]] = values, j: int = j
            ) -> float | None:
                value = values[name][j]
                return value / scale if np.isfinite(value) else None

            rows.append(
                [
                    variant,
                    length,
                    comparison.spread[i],
                    comparison.data_parallel[i],
                    cell("sp_bytes", 2.0**20),
                    cell("tp_bytes", 2.0**20),
                    cell("sp_time"),
                    cell("tp_time"),
                    cell("activation_bytes", GIB),
                    cell("memory_bytes", GIB),
                    cell("iteration_s"),
                    fits,
                    "; ".join(structural) or ("" if fits else OUT_OF_MEMORY.message),
                ]
            )
    table = Table(
        key="sequence_parallel",
        title=f"Sequence-parallel variants by sequence length (Ring/Ulysses over {degree} GPUs)",
        columns=[
            Column(key="variant", label="sequence parallelism"),
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
    figure = sequence_parallel_chart(
        lengths, series, capacity_bytes=r.cluster.accelerator.memory_capacity_bytes, title=title
    )
    note = _sequence_parallel_note(comparison, r.sequence_length_tokens, r.tensor_parallel)
    return SequenceParallelStudy(
        comparison=comparison,
        title=title,
        table=table,
        chart=Chart(key="sequence_parallel", title=title, figure=figure),
        note=note,
    )


def _sequence_parallel_note(comparison: SequenceParallelComparison, here: int, tensor_parallel: int) -> str:
    """At the scenario's length: bytes sent per layer and iteration time of each variant; over the
    range: the longest sequence each variant fits."""
    lengths, series, fits, degree = comparison.sequence_lengths, comparison.series, comparison.fits, comparison.degree
    j = lengths.index(here)
    parts = []
    if tensor_parallel == 1:
        parts.append("megatron: splits the sequence only inside the TP group, so with tp = 1 it is none")
    if degree == 1:
        parts.append("ring, ulysses: no data-parallel GPUs to form a sequence group from (dp = 1)")
    for i, variant in enumerate(series):
        values = series[variant]
        sent = values["sp_bytes"][j] + values["tp_bytes"][j]
        longest = [length for length, f in zip(lengths, fits[i], strict=True) if f]
        reach = f"fits up to {longest[-1]:,} tokens" if longest else f"fits none of {lengths[0]:,}-{lengths[-1]:,}"
        if not np.isfinite(sent):
            parts.append(f"{variant}: not a valid plan at {here:,} tokens, {reach}")
            continue
        parts.append(
            f"{variant}: {sent / 2.0**20:,.0f} MiB per layer, {values['iteration_s'][j]:.3g} s per iteration, {reach}"
        )
    return (
        f"Sequence parallelism at {here:,} tokens (Ring/Ulysses over {degree} GPUs; bytes each GPU sends per layer "
        "and micro-batch in forward, sequence-parallel + TP collectives): "
        + "; ".join(parts)
        + ". At a fixed degree every variant's bytes grow in proportion to the sequence; Ring sends 2(N-1)/N*b*s*h_kv "
        "elements of K and V, Ulysses 4(N-1)/N^2*b*s*h of Q, K, V and output, N/2 times less with MHA."
    )


def first(values: dict[str, Any]) -> dict[str, float]:
    """The first element of each of the engine's arrays, as floats (one design point)."""
    return {k: float(np.asarray(v).reshape(-1)[0]) for k, v in values.items()}
