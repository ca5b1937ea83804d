"""The `temporal_batching` kind: temporal batch size of memory-based dynamic GNNs (PRES, ICLR'24).

Answers: for a dataset, how training throughput and epoch time move with the temporal batch, what
share of a batch's events lose an earlier event's memory update (temporal discontinuity, in closed
form from the degree distribution), and what the 4x larger batch PRES allows at equal accuracy buys.
Engine: dse.engines.temporal_batching.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from dse.catalog import Catalog
from dse.scenarios.base import EvaluationResult, MetricSpec, PublishedFigure, ScenarioKind, Study
from dse.scenarios.kinds.temporal_batching import charts, studies
from dse.scenarios.kinds.temporal_batching.examples import EXAMPLES
from dse.scenarios.kinds.temporal_batching.inputs import TemporalBatchingInputs, TemporalBatchingResolved, resolve
from dse.scenarios.kinds.temporal_batching.metrics import METRICS, compute, event_model, terms
from dse.scenarios.kinds.temporal_batching.published import PUBLISHED, comparisons


def _notes(r: TemporalBatchingResolved, values: dict[str, Any]) -> list[str]:
    limit = float(np.asarray(values["largest_batch_under_threshold"]))
    limit_rate = float(np.asarray(values["events_per_s_at_threshold_batch"]))
    here_rate = float(np.asarray(values["events_per_s"]))
    return [
        f"The largest temporal batch whose discontinuity rate stays at or under {r.max_discontinuity_rate:g} "
        f"on {r.dataset.name} is {limit:,.0f} events ({limit / r.baseline_batch_events:.1f}x the baseline "
        f"batch {r.baseline_batch_events:,}); it trains at {limit_rate:,.0f} events/s "
        f"({limit_rate / here_rate:.2f}x this scenario's batch of {r.temporal_batch_events:,}). Past it, more than "
        f"{r.max_discontinuity_rate:.0%} of a batch's events miss an earlier event's memory update.",
        "Events are drawn independently from the degree law; real streams are bursty "
        "(a user's events cluster in time), so real discontinuity rates run higher than this closed form.",
        "PRES's own prediction-correction work per batch is not added to its batch time.",
    ]


class TemporalBatchingKind(ScenarioKind[TemporalBatchingInputs, TemporalBatchingResolved]):
    kind = "temporal_batching"
    title = "Temporal batching of memory-based dynamic GNNs (PRES)"
    description = (
        "Throughput and epoch time of a TGN-style model against its temporal batch (fixed per-batch cost plus "
        "per-event roofline cost with the accelerator's parallel capacity), the temporal-discontinuity rate in "
        "closed form from the dataset's degree distribution, and the speed-up of PRES's 4x larger batch."
    )
    engine_version = "1"
    inputs_model = TemporalBatchingInputs
    metric_specs: ClassVar[dict[str, MetricSpec]] = METRICS
    #: Measured on a sweep of the first example: ~0.3 ms per point (the degree classes and the
    #: batch-size search of every point).
    cells_per_point = 1.2e5
    bytes_per_point = 2048.0

    def resolve(self, inputs: TemporalBatchingInputs, catalog: Catalog) -> TemporalBatchingResolved:
        return resolve(inputs, catalog)

    def compute(self, resolved: TemporalBatchingResolved) -> dict[str, Any]:
        return compute(resolved)

    #: The per-dataset table (a collapsed table, two engine calls per catalog dataset) waits to be opened.
    deferred_studies: ClassVar[dict[str, str]] = {"datasets": studies.DATASET_TABLE_TITLE}

    def evaluate(self, resolved: TemporalBatchingResolved) -> EvaluationResult:
        return self.evaluate_including(resolved, list(self.deferred_studies))

    def study(self, resolved: TemporalBatchingResolved, key: str) -> Study:
        if key == "datasets":
            return Study(tables=[studies.dataset_table(resolved)])
        raise KeyError(key)

    def evaluate_quick(self, resolved: TemporalBatchingResolved) -> EvaluationResult:
        r = resolved
        values = compute(r)
        return EvaluationResult(
            kind=self.kind,
            engine_version=self.engine_version,
            metrics=self.metrics(values, per_metric_terms=terms(r, values)),
            tables=[studies.event_work_table(event_model(r))],
            charts=charts.charts(
                batches=studies.CURVE_BATCHES.tolist(),
                curves=studies.curves(r),
                baseline=r.baseline_batch_events,
                pres=r.baseline_batch_events * r.pres_batch_factor,
                threshold=r.max_discontinuity_rate,
                threshold_batch=float(np.asarray(values["largest_batch_under_threshold"])),
            ),
            notes=_notes(r, values),
            published=comparisons(
                pres_batch_factor=r.pres_batch_factor, pres_speedup=float(np.asarray(values["pres_speedup"]))
            ),
        )

    def examples(self) -> list[dict[str, Any]]:
        return copy.deepcopy(EXAMPLES)

    def published_figures(self) -> Sequence[PublishedFigure]:
        return PUBLISHED


KIND = TemporalBatchingKind()
