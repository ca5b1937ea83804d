"""The plan_search kind: the fastest parallel training plans that fit a model on a cluster.

Every candidate plan (dp, tp, pp, sequence parallelism, micro-batch, ZeRO, recomputation,
schedule and chunks, offload; and, on a measured heterogeneous cluster, the node mapping) is
judged by the training engine; the answer lists the top plans with their breakdowns, the Pareto
front, the refusals per reason, and a link to a ready "training" scenario for each top plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dse.catalog import Catalog
from dse.engines.training.codes import OFFLOAD_CODES
from dse.scenarios.base import EvaluationResult, PublishedFigure, ScenarioKind, Work
from dse.scenarios.kinds.plan_search import examples, inputs, metrics, published, studies, why
from dse.scenarios.kinds.plan_search.inputs import PlanSearchInputs, ResolvedPlanSearch


class PlanSearchKind(ScenarioKind[PlanSearchInputs, ResolvedPlanSearch]):
    kind = "plan_search"
    title = "Plan search: the fastest training plan that fits"
    description = (
        "Enumerates every parallel training plan of a model on a cluster (dp, tp, pp, sequence "
        "parallelism, micro-batch, ZeRO, recomputation, schedule, offload and, on a heterogeneous "
        "cluster, the node mapping), evaluates them all with the training engine, and returns the "
        "fastest that fit, the Pareto front and the refusals per reason."
    )
    engine_version = "plan-search-3"  # 3: NCCL ring latencies, A100 NVLink and IB bus bandwidth, overlap compute share
    heavy = True
    validated_by = "training"  # priced by the training engine
    ranking = ("top_plans", "iteration_time_s")
    inputs_model = PlanSearchInputs
    metric_specs = metrics.METRICS

    def resolve(self, inputs_: PlanSearchInputs, catalog: Catalog) -> ResolvedPlanSearch:
        return inputs.resolve(inputs_, catalog)

    def compute(self, resolved: ResolvedPlanSearch) -> dict[str, Any]:
        return metrics.compute(resolved)

    def evaluate(self, resolved: ResolvedPlanSearch) -> EvaluationResult:
        result = studies.search(resolved)
        capacity = resolved.cluster.accelerator.memory_capacity_bytes
        tables = studies.tables(result, resolved)
        why_table = why.why_table(result, resolved)
        if why_table is not None:
            tables.append(why_table)
        notes = studies.notes(result, resolved, capacity)
        why_note = why.why_note(result)
        if why_note is not None:
            notes.append(why_note)
        if any(code != OFFLOAD_CODES["none"] for code in resolved.space.offload):
            without = studies.without_offload(resolved)
            tables.append(studies.offload_table(result, without))
            notes.append(studies.offload_note(result, without))
        return EvaluationResult(
            kind=self.kind,
            engine_version=self.engine_version,
            feasible=len(result.top) > 0,
            metrics=self.metrics(metrics.summary(result), per_metric_terms=metrics.metric_terms(resolved, result)),
            tables=tables,
            charts=studies.charts(result, capacity),
            notes=notes,
            published=published.published_comparisons(resolved, result.top),
            links=studies.training_links(result, resolved),
        )

    def work(self, resolved: ResolvedPlanSearch) -> Work:
        return inputs.search_work(resolved)

    def examples(self) -> list[dict[str, Any]]:
        return examples.examples()

    def published_figures(self) -> Sequence[PublishedFigure]:
        return published.PUBLISHED
