"""The plan_search kind: the fastest parallel training plans that fit a model on a cluster.

Every candidate plan (dp, tp, pp, sequence parallelism, micro-batch, ZeRO, recomputation,
schedule and chunks, offload; and, on a measured heterogeneous cluster, the node mapping) is
judged by the training engine; the answer lists the top plans with their breakdowns, the Pareto
front, the refusals per reason, and a link to a ready "training" scenario for each top plan.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from dse.catalog import Catalog
from dse.engines.plan_search import SearchResult
from dse.engines.training.codes import OFFLOAD_CODES
from dse.scenarios.base import EvaluationResult, PublishedFigure, ScenarioKind, Study, Work
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
    # 8: ZeRO-1/2 weight all-gather exposed (training-8); 7: gradients reduced at the stack's width (training-7);
    # 6: MoE router kernels
    engine_version = "plan-search-8"
    heavy = True
    validated_by = "training"  # priced by the training engine
    ranking = ("top_plans", "iteration_time_s")
    inputs_model = PlanSearchInputs
    metric_specs = metrics.METRICS

    def resolve(self, inputs_: PlanSearchInputs, catalog: Catalog) -> ResolvedPlanSearch:
        return inputs.resolve(inputs_, catalog)

    def compute(self, resolved: ResolvedPlanSearch) -> dict[str, Any]:
        return metrics.compute(resolved)

    #: The search of the answer being built, per thread (`_search`).
    _searched: ClassVar[threading.local] = threading.local()
    #: Collapsed tables the page shows only when opened: each costs an engine call or a second search.
    deferred_studies: ClassVar[dict[str, str]] = {
        "why_top_plan": why.WHY_TITLE,
        "offload": studies.OFFLOAD_TITLE,
    }

    def studies_for(self, resolved: ResolvedPlanSearch) -> Sequence[str]:
        offload = any(code != OFFLOAD_CODES["none"] for code in resolved.space.offload)
        return ["why_top_plan", "offload"] if offload else ["why_top_plan"]

    def evaluate(self, resolved: ResolvedPlanSearch) -> EvaluationResult:
        return self.evaluate_including(resolved, list(self.deferred_studies))

    def evaluate_including(self, resolved: ResolvedPlanSearch, include: Sequence[str]) -> EvaluationResult:
        try:
            return super().evaluate_including(resolved, include)
        finally:
            self._searched.__dict__.clear()  # the search is shared by the answer's parts only

    def _search(self, resolved: ResolvedPlanSearch) -> SearchResult:
        """The search of `resolved`, run once for the quick answer and the studies of one answer."""
        held = self._searched
        if getattr(held, "resolved", None) is not resolved:
            held.result = studies.search(resolved)
            held.resolved = resolved
        result: SearchResult = held.result
        return result

    def evaluate_quick(self, resolved: ResolvedPlanSearch) -> EvaluationResult:
        result = self._search(resolved)
        capacity = resolved.cluster.accelerator.memory_capacity_bytes
        notes = studies.notes(result, resolved, capacity)
        why_note = why.why_note(result)
        if why_note is not None:
            notes.append(why_note)
        return EvaluationResult(
            kind=self.kind,
            engine_version=self.engine_version,
            feasible=len(result.top) > 0,
            metrics=self.metrics(metrics.summary(result), per_metric_terms=metrics.metric_terms(resolved, result)),
            tables=studies.tables(result, resolved),
            charts=studies.charts(result, capacity),
            notes=notes,
            published=published.published_comparisons(resolved, result.top),
            links=studies.training_links(result, resolved),
        )

    def study(self, resolved: ResolvedPlanSearch, key: str) -> Study:
        result = self._search(resolved)
        if key == "why_top_plan":
            table = why.why_table(result, resolved)
            return Study(tables=[] if table is None else [table])
        if key == "offload":
            without = studies.without_offload(resolved)
            return Study(tables=[studies.offload_table(result, without)], notes=[studies.offload_note(result, without)])
        raise KeyError(key)

    def work(self, resolved: ResolvedPlanSearch) -> Work:
        return inputs.search_work(resolved)

    def examples(self) -> list[dict[str, Any]]:
        return examples.examples()

    def published_figures(self) -> Sequence[PublishedFigure]:
        return published.PUBLISHED
