"""Scenario kind "inference": batched LLM decode on GPU, NPU, NPU+PIM and NeuPIMs systems."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from dse.catalog import Catalog
from dse.engines.inference import PIM_SYSTEMS, InferenceResult
from dse.scenarios.base import Chart, EvaluationResult, PublishedFigure, ScenarioKind, Table, Work
from dse.scenarios.kinds.inference import charts, published, studies
from dse.scenarios.kinds.inference.examples import EXAMPLES
from dse.scenarios.kinds.inference.inputs import (
    SYSTEM_LABELS,
    InferenceInputs,
    InferenceResolved,
    resolve,
    work,
)
from dse.scenarios.kinds.inference.metrics import (
    METRICS,
    compute,
    formula_terms,
    metric_values,
    moe_terms,
    moe_values,
)
from dse.specs.hardware import AcceleratorSpec


class InferenceKind(ScenarioKind[InferenceInputs, InferenceResolved]):
    kind = "inference"
    title = "Batched LLM inference (GPU, NPU, NPU+PIM, NeuPIMs)"
    description = (
        "Throughput, latency and where the time goes when a batch of requests decodes on a GPU, an NPU, "
        "an NPU with PIM memory in blocked mode, or NeuPIMs (dual row buffers + sub-batch interleaving); "
        "mixture-of-experts models also with data-parallel attention and expert parallelism across nodes."
    )
    # 4: fp8 GEMMs of the TensorRT-LLM 0.6/0.9 stacks on the CUTLASS 3.6 fp8 fit; 5: per-GPU and prefill
    # throughput, the expert all-to-alls of data-parallel attention (new metrics in every result)
    # 6: gate and up as two GEMMs without --use_fused_mlp; MoE experts at the stack's dtype; 7: rope and KV-cache
    # write kernels per layer (vLLM, SGLang stacks)
    engine_version = "inference-8"
    validation_dtype = "fp16"  # the published records are priced in fp16
    inputs_model = InferenceInputs
    metric_specs = METRICS

    def resolve(self, inputs: InferenceInputs, catalog: Catalog) -> InferenceResolved:
        return resolve(inputs, catalog)

    def compute(self, resolved: InferenceResolved) -> dict[str, Any]:
        return compute(resolved)

    def evaluate(self, resolved: InferenceResolved) -> EvaluationResult:
        r = resolved
        runner = studies.Runner(r)  # the engine calls below share what does not depend on the system
        result = runner.run()
        systems = studies.comparable_systems(r)
        comparison = studies.compare_systems(runner, systems, result)
        interleaving = studies.interleaving(runner, systems)
        notes = [
            studies.fit_note(r, result),
            *studies.stack_notes(r, systems),
            *studies.architecture_notes(r),
            *studies.expert_exchange_note(r, result),
        ]
        if r.system != "gpu_only":
            notes.append(studies.verdict(r, comparison.rows))
        if interleaving is not None:
            notes.append(studies.crossover_note(interleaving.crossover_batch))
        return EvaluationResult(
            kind=self.kind,
            engine_version=self.engine_version,
            feasible=bool(float(result.fits) > 0),
            metrics=self.metrics({**metric_values(result, r.system), **moe_values(r)}, formula_terms(r), moe_terms(r)),
            tables=self._tables(r, result, comparison, interleaving),
            charts=self._charts(r, result, systems, comparison, interleaving),
            notes=notes,
            published=published.context(
                interleaving.crossover_batch if interleaving is not None else None,
                pim_system=r.system in PIM_SYSTEMS,
            ),
        )

    @staticmethod
    def _tables(
        r: InferenceResolved,
        result: InferenceResult,
        comparison: studies.SystemsComparison,
        interleaving: studies.Interleaving | None,
    ) -> list[Table]:
        """Ops of one decode layer, the systems at this batch, and with PIM its figures and the interleaving."""
        tables = [studies.op_table(r, result), studies.systems_table(r, comparison.rows)]
        moe = studies.moe_table(r)
        if moe is not None:
            tables.append(moe)
        if r.memory is not None and r.memory.pim_multipliers_per_bank > 0:
            tables.append(studies.pim_table(r.memory))
            if interleaving is not None:
                tables.append(studies.interleaving_table(interleaving))
        return tables

    @staticmethod
    def _charts(
        r: InferenceResolved,
        result: InferenceResult,
        systems: dict[str, AcceleratorSpec],
        comparison: studies.SystemsComparison,
        interleaving: studies.Interleaving | None,
    ) -> list[Chart]:
        """Throughput vs batch per system, the decode layer's time breakdown, and its roofline."""
        dashed: dict[str, list[float]] = {}
        if interleaving is not None:
            dashed = {
                "NeuPIMs, sub-batch interleaving (even split)": interleaving.even_split,
                "NeuPIMs, no interleaving": interleaving.no_split,
            }
        fits_limit = float(result.max_batch_that_fits)
        split = studies.decode_split(r, result)
        points = studies.roofline_points(result, split)
        moe = studies.moe_over_batch(r)
        moe_charts = (
            []
            if moe is None
            else [
                Chart(
                    key="moe_experts_vs_batch",
                    title="Experts touched per decode step vs batch",
                    figure=charts.moe_experts_vs_batch(moe),
                )
            ]
        )
        return [
            Chart(
                key="throughput_vs_batch",
                title="Throughput vs batch",
                figure=charts.throughput_vs_batch(
                    studies.BATCH_GRID,
                    comparison.throughput_by_system,
                    labels={s: f"{SYSTEM_LABELS[s]} ({d.id})" for s, d in systems.items()},
                    dashed=dashed,
                    crossover_batch=interleaving.crossover_batch if interleaving is not None else None,
                    max_batch_that_fits=fits_limit if 0 < fits_limit < studies.BATCH_GRID[-1] else None,
                    banded=r.system,
                ),
            ),
            Chart(
                key="time_breakdown",
                title="Time breakdown",
                figure=charts.time_breakdown(split.names, split.times_s, split.units, split.busy_s),
            ),
            Chart(
                key="roofline",
                title="Roofline",
                figure=charts.roofline(
                    points.names,
                    points.intensity_flop_per_byte,
                    points.achieved_flops_per_s,
                    r.accelerator.peak_for(r.activation_dtype),
                    r.accelerator.memory_bandwidth_bytes_per_s,
                    not_drawn=points.not_drawn,
                ),
            ),
            *moe_charts,
        ]

    def work(self, resolved: InferenceResolved) -> Work:
        return work(resolved)

    def is_medium(self, inputs: InferenceInputs) -> bool:
        """An NPU or PIM system (or a PIM memory) is compared with up to five systems over the batch grid
        (about nine engine calls, sharing their system-independent parts); GPU-only on plain memory is two."""
        return inputs.system != "gpu_only" or inputs.memory is not None

    def examples(self) -> list[dict[str, Any]]:
        return copy.deepcopy(list(EXAMPLES))

    def published_figures(self) -> Sequence[PublishedFigure]:
        return published.PUBLISHED


KIND = InferenceKind()
