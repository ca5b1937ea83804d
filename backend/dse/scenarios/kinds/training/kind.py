"""The training kind: memory, time and timeline of one parallel LLM training plan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from dse.catalog import Catalog
from dse.scenarios.base import EvaluationResult, PublishedFigure, ScenarioKind, Study
from dse.scenarios.kinds.training import examples, inputs, metrics, published, studies
from dse.scenarios.kinds.training.inputs import ResolvedTraining, TrainingInputs

GIB = 2.0**30


class TrainingKind(ScenarioKind[TrainingInputs, ResolvedTraining]):
    kind = "training"
    title = "Parallel LLM training plan"
    description = (
        "Memory per GPU, iteration time and its breakdown, and a timeline of one iteration for a plan "
        "of data, tensor, pipeline, sequence, context and expert parallelism with ZeRO, recomputation, pipeline "
        "schedules (uneven stages too), bf16 or fp8, and SSD activation offload."
    )
    # 8: ZeRO-1/2 weights all-gathered after the optimizer step (ZeRO-1 under the next forward with
    # overlap_param_gather), ZeRO-2 reduces every micro-batch; 7: the stack's gradient reduce width
    # (Megatron-Core: fp32 under bf16); 6: MoE router kernels; DeepSeek-V3 MTP, norm / MLA up recompute, DualPipe
    # pairing
    engine_version = "training-8"
    validation_dtype = "bf16"  # ClusterArrays.from_spec's default, as the records use
    inputs_model = TrainingInputs
    metric_specs = metrics.METRICS

    def resolve(self, inputs_: TrainingInputs, catalog: Catalog) -> ResolvedTraining:
        return inputs.resolve(inputs_, catalog)

    def compute(self, resolved: ResolvedTraining) -> dict[str, Any]:
        return metrics.compute(resolved)

    deferred_studies: ClassVar[
        dict[str, str]
    ] = {  # ~90% of a full answer's time and size (the 145.6B example: 186 ms, 427 kB)
        "timeline": "Timeline of one iteration",
        "sequence_parallel": "Sequence-parallel variants over sequence length",
    }

    def evaluate(self, resolved: ResolvedTraining) -> EvaluationResult:
        return self.evaluate_including(resolved, list(self.deferred_studies))

    def evaluate_quick(self, resolved: ResolvedTraining) -> EvaluationResult:
        r = metrics.evaluation(resolved)
        f = studies.first(r.as_dict())
        fits = bool(np.asarray(r.fits).reshape(-1)[0])
        gpus = resolved.cluster.gpus
        capacity = resolved.cluster.accelerator.memory_capacity_bytes
        shown = self.metrics(
            studies.first(metrics.metric_values(r)), per_metric_terms=metrics.metric_terms(resolved, f)
        )
        notes = [
            f"Fits: {f['memory_headroom_bytes'] / GIB:.1f} GiB to spare per GPU."
            if fits
            else f"Does not fit: {-f['memory_headroom_bytes'] / GIB:.1f} GiB short per GPU.",
            f"Rank order tp -> sequence -> dp -> pp (Megatron-LM); {gpus} GPUs on {resolved.cluster.nodes} node(s).",
        ]
        return EvaluationResult(
            kind=self.kind,
            engine_version=self.engine_version,
            feasible=fits,
            metrics=shown,
            tables=studies.breakdown_tables(f),
            charts=studies.breakdown_charts(f, capacity),
            notes=notes,
            published=published.published_comparisons(resolved, f),
        )

    def study(self, resolved: ResolvedTraining, key: str) -> Study:
        if key == "timeline":
            timeline = studies.timeline_study(resolved, studies.first(metrics.evaluation(resolved).as_dict()))
            return Study(timeline.tables, timeline.charts, timeline.notes)
        if key == "sequence_parallel":
            comparison = studies.sequence_parallel_study(resolved)
            return Study([comparison.table], [comparison.chart], [comparison.note])
        raise KeyError(key)

    def examples(self) -> list[dict[str, Any]]:
        return examples.examples()

    def published_figures(self) -> Sequence[PublishedFigure]:
        return published.PUBLISHED
