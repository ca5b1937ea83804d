"""Scenario kind "inference": batched LLM decode on GPU, NPU, NPU+PIM and NeuPIMs systems."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from dse.catalog import Catalog
from dse.engines.decoder_ops import BOUND_NAMES, OP_NAMES
from dse.engines.inference import (
    PIM_SYSTEMS,
    SYSTEMS,
    Deployment,
    DeviceRates,
    InferenceResult,
    ModelShape,
    Workload,
    lognormal_quantile_table,
    op_unit,
    run_inference,
)
from dse.engines.pim import pim_figures
from dse.figures import inference as figures
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
from dse.specs.hardware import BYTES_PER_ELEMENT, AcceleratorSpec
from dse.specs.llm import LLMSpec
from dse.specs.memory import MemorySpec, RequestLengthSpec

SystemName = Literal["gpu_only", "npu_only", "npu_pim_blocked", "neupims", "gpu_pim"]
QuantDtype = Literal["fp16", "bf16", "fp8", "int8"]

#: NVLink 3 (A100): 600 GB/s total = 300e9 bytes/s per direction per GPU (NVIDIA A100 datasheet).
NVLINK3_BANDWIDTH_GB_PER_S = 300.0
#: Per-step latency of a ring all-reduce on 4xA100 NVLink, from LLMCompass's measured 26.04 us
#: all-reduce of 196 KB (PrincetonUniversity/LLMCompass ae/figure5/ijkl/real_hardware/transformerAR_A100.csv):
#: (26.04 us - 2*3/4*196,608 B / 300 GB/s) / (2*3 steps) = 4.2 us. A calibration, not a validation.
NVLINK3_STEP_LATENCY_US = 4.2
#: Batches tried for the throughput-vs-batch figure and the interleaving crossover.
BATCH_GRID: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256, 320, 384, 448, 512, 640, 768, 1024)


class InferenceInputs(StrictModel):
    """A model, a system and a workload."""

    model: str | LLMSpec = Field("gpt3-7b", description="LLM preset id (llms/) or an inline spec.")
    system: SystemName = Field("neupims", description="Which system runs the decode.")
    accelerator: str | AcceleratorSpec = Field("neupims-npu", description="GPU or NPU preset (accelerators/).")
    memory: str | MemorySpec | None = Field(
        "neupims-hbm-pim", description="PIM memory preset (memories/), for the PIM systems."
    )
    comparison_gpu: str | AcceleratorSpec = Field(
        "a100-80gb", description="GPU preset of the GPU-only row in the system comparison."
    )
    batch_size: int = Field(256, ge=1, le=65536, description="Requests decoded together.")
    request_lengths: str | RequestLengthSpec | None = Field(
        None, description="Request-length distribution (request_lengths/); null = fixed prompt/output lengths."
    )
    prompt_tokens: int = Field(512, ge=1, le=1_048_576)
    output_tokens: int = Field(512, ge=1, le=1_048_576)
    tensor_parallel: int = Field(1, ge=1, le=1024)
    pipeline_parallel: int = Field(1, ge=1, le=1024)
    weight_dtype: QuantDtype = "fp16"
    activation_dtype: QuantDtype = "fp16"
    kv_cache_dtype: QuantDtype = "fp16"
    sub_batch_fraction: float | None = Field(
        None, ge=0.0, le=0.5, description="NeuPIMs: share of the batch in the first sub-batch; null = best split."
    )
    link_bandwidth_gb_per_s: float = Field(
        NVLINK3_BANDWIDTH_GB_PER_S, gt=0, description="Per-direction link bandwidth per device (GB/s)."
    )
    link_latency_us: float = Field(NVLINK3_STEP_LATENCY_US, ge=0, description="Latency per all-reduce step (us).")
    fused_qkv: bool = Field(True, description="Q, K and V projections in one kernel (False: three launches).")


@dataclass(frozen=True)
class InferenceResolved:
    system: str
    model: LLMSpec
    accelerator: AcceleratorSpec
    comparison_gpu: AcceleratorSpec
    memory: MemorySpec | None
    request_lengths: RequestLengthSpec | None
    batch_size: float
    prompt_tokens: float
    output_tokens: float
    tensor_parallel: float
    pipeline_parallel: float
    weight_bytes: float
    activation_bytes: float
    kv_cache_bytes: float
    activation_dtype: str
    sub_batch_fraction: float | None
    link_bandwidth_bytes_per_s: float
    link_latency_s: float
    fused_qkv: bool


def _engine_inputs(
    r: InferenceResolved, *, system: str | None = None, accelerator: AcceleratorSpec | None = None
) -> dict[str, Any]:
    """Keyword arguments of run_inference for the resolved tree (optionally another system/device)."""
    llm, acc = r.model, accelerator or r.accelerator
    shape = ModelShape(
        hidden_size=llm.hidden_size,
        num_layers=llm.num_layers,
        num_heads=llm.num_heads,
        num_kv_heads=llm.num_kv_heads,
        ffn_hidden_size=llm.ffn_hidden_size,
        vocab_size=llm.vocab_size,
        gated_ffn=llm.ffn_kind == "swiglu",
        layernorm=llm.norm_kind == "layernorm",
        linear_bias=llm.linear_bias,
        tied_embeddings=llm.tied_embeddings,
        learned_positions=float(llm.max_context_tokens) if llm.position_embedding == "learned" else 0.0,
    )
    matrix_peak = acc.peak_for(r.activation_dtype)
    device = DeviceRates(
        matrix_flops_per_s=matrix_peak,
        vector_flops_per_s=acc.vector_flops_per_s or matrix_peak,
        memory_bandwidth_bytes_per_s=acc.memory_bandwidth_bytes_per_s,
        memory_capacity_bytes=acc.memory_capacity_bytes,
        compute_efficiency=acc.compute_efficiency,
        memory_efficiency=acc.memory_efficiency,
        attention_memory_efficiency=acc.attention_memory_efficiency or acc.memory_efficiency,
        kernel_overhead_s=acc.kernel_overhead_s,
    )
    deployment = Deployment(
        tensor_parallel=r.tensor_parallel,
        pipeline_parallel=r.pipeline_parallel,
        link_bandwidth_bytes_per_s=r.link_bandwidth_bytes_per_s,
        link_latency_s=r.link_latency_s,
        weight_bytes=r.weight_bytes,
        activation_bytes=r.activation_bytes,
        kv_cache_bytes=r.kv_cache_bytes,
    )
    lengths = r.request_lengths
    if lengths is None:
        workload = Workload(
            batch=r.batch_size,
            prompt_tokens=r.prompt_tokens,
            output_tokens=r.output_tokens,
            context_tokens=r.prompt_tokens + r.output_tokens / 2.0,
            peak_context_tokens=r.prompt_tokens + r.output_tokens,
        )
    else:
        workload = Workload(
            batch=r.batch_size,
            prompt_tokens=lengths.mean_prompt_tokens,
            output_tokens=lengths.mean_output_tokens,
            context_tokens=lengths.mean_context_tokens,
            peak_context_tokens=lengths.max_context_tokens,
            context_quantile_tokens=lognormal_quantile_table(
                median_tokens=float(lengths.median_context_tokens),
                mean_tokens=float(lengths.mean_context_tokens),
                max_tokens=float(lengths.max_context_tokens),
            ),
        )
    return {
        "system": system or r.system,
        "shape": shape,
        "device": device,
        "deployment": deployment,
        "workload": workload,
        "memory": r.memory,
        "sub_batch_fraction": r.sub_batch_fraction,
        "fused_qkv": r.fused_qkv,
    }


_METRICS: dict[str, MetricSpec] = {
    "throughput_tokens_per_s": MetricSpec(
        label="Decode throughput", unit="tokens/s", formula="B / (L/PP * t_layer + t_lm_head)"
    ),
    "time_per_output_token_s": MetricSpec(label="Time per output token", unit="s", formula="PP * (stage time)"),
    "time_to_first_token_s": MetricSpec(
        label="Time to first token", unit="s", formula="L * t_prefill_layer(B, prompt) + t_lm_head"
    ),
    "end_to_end_throughput_tokens_per_s": MetricSpec(
        label="End-to-end throughput (prefill + decode)", unit="tokens/s", formula="B*n_out / (TTFT + n_out*TPOT)"
    ),
    "layer_time_s": MetricSpec(label="Decode time per layer", unit="s", formula="see the system's schedule"),
    "attention_time_s": MetricSpec(label="Attention time per layer (whole batch)", unit="s"),
    "npu_busy_fraction": MetricSpec(label="NPU/GPU busy fraction", unit="", formula="matrix-unit time / stage time"),
    "pim_busy_fraction": MetricSpec(label="PIM busy fraction", unit="", formula="PIM GEMV time / stage time"),
    "sub_batch_fraction": MetricSpec(label="First sub-batch share (NeuPIMs)", unit="", formula="B1 / B"),
    "weights_bytes_per_device": MetricSpec(label="Weights per device", unit="bytes", formula="N * w / (TP*PP)"),
    "kv_cache_bytes_per_device": MetricSpec(
        label="KV cache per device", unit="bytes", formula="B * s * 2*L*a_kv*d_h*w_kv / TP"
    ),
    "memory_footprint_bytes_per_device": MetricSpec(label="Memory footprint per device", unit="bytes"),
    "max_batch_that_fits": MetricSpec(
        label="Largest batch that fits", unit="requests", formula="floor((capacity - weights) / KV per request)"
    ),
    "fits": MetricSpec(label="Fits in memory (1 yes, 0 no)", unit=""),
}

_RESULT_KEYS = tuple(_METRICS)


def _metric_values(result: InferenceResult) -> dict[str, Any]:
    return {key: getattr(result, key) for key in _RESULT_KEYS}


class InferenceKind(ScenarioKind[InferenceInputs, InferenceResolved]):
    kind = "inference"
    title = "Batched LLM inference (GPU, NPU, NPU+PIM, NeuPIMs)"
    description = (
        "Throughput, latency and where the time goes when a batch of requests decodes on a GPU, an NPU, "
        "an NPU with PIM memory in blocked mode, or NeuPIMs (dual row buffers + sub-batch interleaving)."
    )
    engine_version = "inference-1"
    inputs_model = InferenceInputs
    metric_specs = _METRICS

    def resolve(self, inputs: InferenceInputs, catalog: Catalog) -> InferenceResolved:
        llm: LLMSpec = preset_or_inline(catalog, "llms", inputs.model, "model")
        acc: AcceleratorSpec = preset_or_inline(catalog, "accelerators", inputs.accelerator, "accelerator")
        gpu: AcceleratorSpec = preset_or_inline(catalog, "accelerators", inputs.comparison_gpu, "comparison_gpu")
        memory: MemorySpec | None = (
            None if inputs.memory is None else preset_or_inline(catalog, "memories", inputs.memory, "memory")
        )
        lengths: RequestLengthSpec | None = (
            None
            if inputs.request_lengths is None
            else preset_or_inline(catalog, "request_lengths", inputs.request_lengths, "request_lengths")
        )
        tp, pp = inputs.tensor_parallel, inputs.pipeline_parallel
        if llm.num_heads % tp or llm.num_kv_heads % tp:
            raise InputError(
                "tensor_parallel",
                f"{tp} must divide the heads ({llm.num_heads}) and KV heads ({llm.num_kv_heads}) of {llm.id}",
            )
        if llm.num_layers % pp:
            raise InputError("pipeline_parallel", f"{pp} must divide the {llm.num_layers} layers of {llm.id}")
        if gpu.kind != "gpu":
            raise InputError("comparison_gpu", f"'{gpu.id}' is not a GPU")
        wants_gpu = inputs.system.startswith("gpu")
        if (acc.kind == "gpu") != wants_gpu:
            raise InputError(
                "accelerator",
                f"system '{inputs.system}' needs {'a GPU' if wants_gpu else 'an NPU'}; '{acc.id}' is {acc.kind}",
            )
        if inputs.system in PIM_SYSTEMS:
            if memory is None or memory.pim_multipliers_per_bank <= 0:
                raise InputError("memory", f"system '{inputs.system}' needs a memory with PIM units")
            if inputs.system == "neupims" and memory.pim_row_buffers_per_bank < 2:
                raise InputError("memory", f"NeuPIMs needs dual row buffers; '{memory.id}' has one per bank")
        if lengths is None and inputs.prompt_tokens + inputs.output_tokens > llm.max_context_tokens:
            raise InputError(
                "output_tokens",
                f"prompt + output = {inputs.prompt_tokens + inputs.output_tokens} exceeds the context "
                f"of {llm.id} ({llm.max_context_tokens})",
            )
        if lengths is not None and not (
            0 < lengths.median_context_tokens <= lengths.mean_context_tokens <= lengths.max_context_tokens
        ):
            raise InputError("request_lengths", "needs median <= mean <= max context tokens")
        return InferenceResolved(
            system=inputs.system,
            model=llm,
            accelerator=acc,
            comparison_gpu=gpu,
            memory=memory,
            request_lengths=lengths,
            batch_size=float(inputs.batch_size),
            prompt_tokens=float(inputs.prompt_tokens),
            output_tokens=float(inputs.output_tokens),
            tensor_parallel=float(tp),
            pipeline_parallel=float(pp),
            weight_bytes=BYTES_PER_ELEMENT[inputs.weight_dtype],
            activation_bytes=BYTES_PER_ELEMENT[inputs.activation_dtype],
            kv_cache_bytes=BYTES_PER_ELEMENT[inputs.kv_cache_dtype],
            activation_dtype=inputs.activation_dtype,
            sub_batch_fraction=inputs.sub_batch_fraction,
            link_bandwidth_bytes_per_s=inputs.link_bandwidth_gb_per_s * 1e9,
            link_latency_s=inputs.link_latency_us * 1e-6,
            fused_qkv=inputs.fused_qkv,
        )

    def compute(self, resolved: InferenceResolved) -> dict[str, Any]:
        return _metric_values(run_inference(**_engine_inputs(resolved)))

    def _comparable_systems(self, r: InferenceResolved) -> dict[str, AcceleratorSpec]:
        """Systems that can run this scenario's model, each with its device."""
        systems: dict[str, AcceleratorSpec] = {"gpu_only": r.comparison_gpu}
        npu = r.accelerator if r.accelerator.kind == "npu" else None
        if npu is not None:
            systems["npu_only"] = npu
        has_pim = r.memory is not None and r.memory.pim_multipliers_per_bank > 0
        if npu is not None and has_pim:
            systems["npu_pim_blocked"] = npu
            assert r.memory is not None
            if r.memory.pim_row_buffers_per_bank >= 2:
                systems["neupims"] = npu
        if has_pim:
            systems["gpu_pim"] = r.comparison_gpu if r.accelerator.kind == "npu" else r.accelerator
        systems[r.system] = r.accelerator
        return systems

    def evaluate(self, resolved: InferenceResolved) -> EvaluationResult:
        r = resolved
        result = run_inference(**_engine_inputs(r))
        values = _metric_values(result)
        terms: dict[str, float | str] = {
            "B": r.batch_size,
            "L": float(r.model.num_layers),
            "TP": r.tensor_parallel,
            "PP": r.pipeline_parallel,
            "system": r.system,
        }
        metrics = [self.metric(key, values[key], **terms) for key in _RESULT_KEYS]
        notes: list[str] = []
        feasible = bool(np.all(np.asarray(result.fits) > 0))
        if not feasible:
            notes.append(
                f"Does not fit: batch {r.batch_size:.0f} needs "
                f"{float(result.memory_footprint_bytes_per_device) / 1e9:.2f} GB "
                f"per device (weights {float(result.weights_bytes_per_device) / 1e9:.2f} GB + KV cache "
                f"{float(result.kv_cache_bytes_per_device) / 1e9:.2f} GB) but {r.accelerator.id} has "
                f"{r.accelerator.memory_capacity_bytes / 1e9:.2f} GB; the largest batch that fits is "
                f"{float(result.max_batch_that_fits):.0f}."
            )
        else:
            notes.append(
                f"Fits: {float(result.memory_footprint_bytes_per_device) / 1e9:.2f} GB per device of "
                f"{r.accelerator.memory_capacity_bytes / 1e9:.2f} GB; the largest batch that fits is "
                f"{float(result.max_batch_that_fits):.0f}."
            )
        tables = [self._op_table(r, result)]
        figs: list[Chart] = []
        systems = self._comparable_systems(r)
        batches = np.asarray(BATCH_GRID, dtype=np.float64)
        sweep_resolved = dataclasses.replace(r, batch_size=batches)  # type: ignore[arg-type]
        by_system: dict[str, list[float]] = {}
        comparison_rows: list[list[float | int | str | bool | None]] = []
        for system, device in systems.items():
            run = run_inference(**_engine_inputs(sweep_resolved, system=system, accelerator=device))
            by_system[system] = [float(v) for v in np.asarray(run.throughput_tokens_per_s)]
            here = run_inference(**_engine_inputs(r, system=system, accelerator=device))
            comparison_rows.append(
                [
                    figures.SYSTEM_LABELS[system],
                    device.id,
                    float(here.throughput_tokens_per_s),
                    float(here.time_per_output_token_s) * 1e3,
                    float(np.asarray(result.throughput_tokens_per_s) / here.throughput_tokens_per_s),
                    bool(float(here.fits) > 0),
                ]
            )
        tables.append(
            Table(
                key="systems",
                title=f"Systems at batch {r.batch_size:.0f}",
                columns=[
                    Column(key="system", label="system"),
                    Column(key="device", label="device"),
                    Column(key="throughput", label="throughput", unit="tokens/s"),
                    Column(key="tpot", label="time per output token", unit="ms"),
                    Column(key="speedup", label=f"{figures.SYSTEM_LABELS[r.system]} over this", unit="x"),
                    Column(key="fits", label="fits in memory"),
                ],
                rows=comparison_rows,
            )
        )
        if r.system != "gpu_only":
            notes.append(self._verdict(r, comparison_rows))
        dashed: dict[str, list[float]] = {}
        crossover_batch: float | None = None
        if r.memory is not None and r.memory.pim_multipliers_per_bank > 0:
            tables.append(self._pim_table(r.memory))
            interleaving = self._interleaving(r)
            if interleaving is not None:
                on_t, off_t, crossover_batch = interleaving
                tables.append(self._interleaving_table(on_t, off_t))
                dashed = {
                    "NeuPIMs, sub-batch interleaving (even split)": on_t,
                    "NeuPIMs, no interleaving": off_t,
                }
                notes.append(self._crossover_note(crossover_batch))
        fits_limit = float(result.max_batch_that_fits)
        figs.append(
            Chart(
                key="throughput_vs_batch",
                title="Throughput vs batch",
                figure=figures.throughput_vs_batch(
                    BATCH_GRID,
                    by_system,
                    labels={s: f"{figures.SYSTEM_LABELS[s]} ({d.id})" for s, d in systems.items()},
                    dashed=dashed,
                    crossover_batch=crossover_batch,
                    max_batch_that_fits=fits_limit if 0 < fits_limit < BATCH_GRID[-1] else None,
                ),
            )
        )
        names = list(OP_NAMES)
        times = [float(result.decode_ops[n].time_s) for n in names]
        units = [op_unit(r.system, n) for n in names]
        if r.system in PIM_SYSTEMS:
            pim_share = float(result.pim_attention_time_s) / 2.0  # score and context GEMVs
            times = [pim_share if u == "pim" else t for t, u in zip(times, units, strict=True)]
        busy: dict[str, float] = {}
        for t, u in zip(times, units, strict=True):
            busy[u] = busy.get(u, 0.0) + t
        figs.append(
            Chart(
                key="time_breakdown", title="Time breakdown", figure=figures.time_breakdown(names, times, units, busy)
            )
        )
        costs = result.decode_op_costs
        roof_names = [n for n in names if units[names.index(n)] not in ("link",)]
        intensity = [float(costs[n].flop) / max(float(costs[n].bytes_moved), 1.0) for n in roof_names]
        achieved = [float(costs[n].flop) / max(times[names.index(n)], 1e-15) for n in roof_names]
        figs.append(
            Chart(
                key="roofline",
                title="Roofline",
                figure=figures.roofline(
                    roof_names,
                    intensity,
                    achieved,
                    r.accelerator.peak_for(r.activation_dtype),
                    r.accelerator.memory_bandwidth_bytes_per_s,
                ),
            )
        )
        return EvaluationResult(
            kind=self.kind,
            engine_version=self.engine_version,
            feasible=feasible,
            metrics=metrics,
            tables=tables,
            charts=figs,
            notes=notes,
            references=[
                {
                    "claim": "NeuPIMs throughput over GPU-only, NPU-only and naive NPU+PIM",
                    "published": "3x, 2.4x, 1.6x",
                    "source": "Heo et al., NeuPIMs (ASPLOS'24), abstract and Section 7",
                },
                {
                    "claim": "Public simulator turns sub-batch interleaving on at batch >= 256",
                    "published": 256,
                    "source": "shared/REFERENCE.md section 1 (casys-kaist/NeuPIMs)",
                },
            ],
        )

    def _interleaving(self, r: InferenceResolved) -> tuple[list[float], list[float], float | None] | None:
        """NeuPIMs throughput over BATCH_GRID with an even split and with no split, and the first
        batch of the grid where the even split wins (None: never)."""
        systems = self._comparable_systems(r)
        if "neupims" not in systems:
            return None
        npu = systems["neupims"]
        batches = np.asarray(BATCH_GRID, dtype=np.float64)
        # Both splits in one engine call: the split is a leading array axis broadcast with the batch.
        splits = np.asarray([[0.5], [0.0]])
        both = dataclasses.replace(r, batch_size=batches, sub_batch_fraction=splits)  # type: ignore[arg-type]
        throughput = np.broadcast_to(
            np.asarray(
                run_inference(**_engine_inputs(both, system="neupims", accelerator=npu)).throughput_tokens_per_s
            ),
            (2, batches.size),
        )
        on_t, off_t = throughput[0], throughput[1]
        wins = np.nonzero(on_t > off_t)[0]
        crossover = float(BATCH_GRID[int(wins[0])]) if wins.size else None
        return [float(v) for v in on_t], [float(v) for v in off_t], crossover

    @staticmethod
    def _crossover_note(crossover_batch: float | None) -> str:
        if crossover_batch is None:
            return f"Sub-batch interleaving (even split) never beats no interleaving up to batch {BATCH_GRID[-1]}."
        return (
            f"Sub-batch interleaving (even split) first beats no interleaving at batch {crossover_batch:.0f} "
            f"(the public NeuPIMs simulator turns it on at batch >= 256)."
        )

    @staticmethod
    def _interleaving_table(on_t: list[float], off_t: list[float]) -> Table:
        return Table(
            key="interleaving",
            title="NeuPIMs: sub-batch interleaving (even split) vs none, by batch",
            columns=[
                Column(key="batch", label="batch", unit="requests"),
                Column(key="interleaved", label="interleaved (even split)", unit="tokens/s"),
                Column(key="plain", label="no interleaving", unit="tokens/s"),
                Column(key="gain", label="interleaved / none", unit="x"),
            ],
            rows=[[b, on, off, on / off] for b, on, off in zip(BATCH_GRID, on_t, off_t, strict=True)],
        )

    def _verdict(self, r: InferenceResolved, rows: list[list[float | int | str | bool | None]]) -> str:
        """One sentence: this system against the comparison GPU at this batch, with what fits."""
        by_label = {str(row[0]): row for row in rows}
        mine = by_label[figures.SYSTEM_LABELS[r.system]]
        gpu = by_label[figures.SYSTEM_LABELS["gpu_only"]]
        ratio = float(mine[2]) / float(gpu[2])  # type: ignore[arg-type]
        n_devices = r.tensor_parallel * r.pipeline_parallel
        word = "beats" if ratio > 1.0 else "does not beat"
        fit = "" if mine[5] else f" (but {r.accelerator.id} does not fit this batch)"
        gpu_fit = "" if gpu[5] else f" ({gpu[1]} does not fit this batch)"
        return (
            f"At batch {r.batch_size:.0f} on {n_devices:.0f} devices (TP{r.tensor_parallel:.0f} "
            f"PP{r.pipeline_parallel:.0f}), {figures.SYSTEM_LABELS[r.system]} on {mine[1]} "
            f"{word} GPU-only on {gpu[1]}: {float(mine[2]):,.0f} vs {float(gpu[2]):,.0f} tokens/s "  # type: ignore[arg-type]
            f"({ratio:.2f}x){fit}{gpu_fit}."
        )

    def _op_table(self, r: InferenceResolved, result: InferenceResult) -> Table:
        rows: list[list[float | int | str | bool | None]] = []
        for name in OP_NAMES:
            cost, priced = result.decode_op_costs[name], result.decode_ops[name]
            flop, moved = float(cost.flop), float(cost.bytes_moved)
            unit = op_unit(r.system, name)
            rows.append(
                [
                    name,
                    unit,
                    flop,
                    moved,
                    float(cost.link_bytes),
                    flop / moved if moved > 0 else None,
                    float(priced.time_s) * 1e6 if unit != "pim" else None,
                    BOUND_NAMES[int(priced.bound)] if unit != "pim" else "PIM (see PIM table)",
                ]
            )
        return Table(
            key="ops",
            title="Decode layer, per op and per rank (whole batch)",
            columns=[
                Column(key="op", label="op"),
                Column(key="unit", label="unit"),
                Column(key="flop", label="FLOP", unit="FLOP"),
                Column(key="bytes", label="memory traffic", unit="bytes"),
                Column(key="link_bytes", label="link traffic per rank", unit="bytes"),
                Column(key="intensity", label="arithmetic intensity", unit="FLOP/byte"),
                Column(key="time", label="time on the matrix/vector unit or link", unit="us"),
                Column(key="bound", label="bound by"),
            ],
            rows=rows,
        )

    def _pim_table(self, m: MemorySpec) -> Table:
        figures = pim_figures(m)
        external, internal = figures.external_bandwidth_bytes_per_s, figures.internal_bandwidth_bytes_per_s
        flops, tile = figures.peak_flops_per_s, figures.gemv_tile_cycles
        rows: list[list[float | int | str | bool | None]] = [
            ["external bandwidth", float(external), "bytes/s"],
            ["PIM peak internal bandwidth", float(internal), "bytes/s"],
            ["internal / external", float(internal / external), "x"],
            ["PIM peak compute", float(flops), "FLOP/s"],
            ["GEMV tile", float(tile), "cycles"],
            ["refresh share of time (tRFC/tREFI)", m.t_rfc_cycles / m.t_refi_cycles, ""],
        ]
        return Table(
            key="pim",
            title=f"PIM figures derived from {m.id}",
            columns=[
                Column(key="what", label="quantity"),
                Column(key="value", label="value"),
                Column(key="unit", label="unit"),
            ],
            rows=rows,
        )

    def examples(self) -> list[dict[str, Any]]:
        def doc(name: str, **inputs: Any) -> dict[str, Any]:
            return {"schema_version": 1, "kind": self.kind, "name": name, "inputs": inputs}

        return [
            # The NeuPIMs simulator's GPT-3 30B setting (casys-kaist/NeuPIMs configs/model_configs/
            # gpt3-30B.json: TP4, PP2, i.e. 8 devices of 32 GB). With ShareGPT lengths only ~266 requests
            # fit, so batch 512 is posed on the paper's other workload, Alpaca.
            doc(
                "Does NeuPIMs beat an H100 for GPT-3 30B decoding at batch 512, and from which batch "
                "does sub-batch interleaving pay? (TP4 PP2, Alpaca-like requests)",
                model="gpt3-30b",
                system="neupims",
                accelerator="neupims-npu",
                memory="neupims-hbm-pim",
                comparison_gpu="h100-sxm",
                batch_size=512,
                request_lengths="alpaca-vllm",
                tensor_parallel=4,
                pipeline_parallel=2,
            ),
            doc(
                "NeuPIMs, GPT-3 7B TP4, ShareGPT-like requests, batch 512",
                model="gpt3-7b",
                system="neupims",
                accelerator="neupims-npu",
                memory="neupims-hbm-pim",
                batch_size=512,
                request_lengths="sharegpt-neupims",
                tensor_parallel=4,
            ),
            doc(
                "Naive NPU+PIM (blocked), GPT-3 13B TP4, Alpaca-like requests",
                model="gpt3-13b",
                system="npu_pim_blocked",
                accelerator="neupims-npu",
                memory="neupims-hbm-pim",
                batch_size=256,
                request_lengths="alpaca-vllm",
                tensor_parallel=4,
            ),
            doc(
                "Llama-2 7B on one A100 80GB, fixed 512/512 tokens",
                model="llama2-7b",
                system="gpu_only",
                accelerator="a100-80gb",
                memory=None,
                batch_size=32,
                prompt_tokens=512,
                output_tokens=512,
            ),
            doc(
                "GPT-3 175B on 8xH100 TP8, fp8 weights and KV cache",
                model="gpt3-175b",
                system="gpu_only",
                accelerator="h100-sxm",
                memory=None,
                batch_size=64,
                prompt_tokens=1024,
                output_tokens=512,
                tensor_parallel=8,
                weight_dtype="fp8",
                kv_cache_dtype="fp8",
                link_bandwidth_gb_per_s=450.0,
            ),
        ]


KIND = InferenceKind()

__all__ = ["KIND", "SYSTEMS", "InferenceInputs", "InferenceKind", "InferenceResolved"]
