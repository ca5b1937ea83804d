"""Analyses of `temporal_batching` beyond the metrics: the event's work by part, and throughput and
discontinuity against the temporal batch for every catalog dataset."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dse.engines.temporal_batching import dataset_classes, discontinuity_rate, sides_classes, temporal_batch_time
from dse.scenarios.base import Column, Table
from dse.scenarios.kinds.temporal_batching.inputs import TemporalBatchingResolved
from dse.scenarios.kinds.temporal_batching.metrics import EventModel, event_model, train_events
from dse.specs.workloads import DegreeSideSpec, GraphDatasetSpec

#: Temporal batches of the per-dataset curves (events).
CURVE_BATCHES = np.unique(np.round(np.geomspace(10, 20_000, 40)))


def rates(r: TemporalBatchingResolved, batch: Any, dataset: GraphDatasetSpec | None = None) -> tuple[Any, Any]:
    """(events/s, discontinuity rate) at `batch` for `dataset` (default: the scenario's)."""
    here = r if dataset is None else replace(r, dataset=dataset)
    source, destination = dataset_classes(here.dataset, exponent=r.zipf_exponent_override)
    return events_per_s(r, batch, here), discontinuity_rate(batch_events=batch, source=source, destination=destination)


def events_per_s(r: TemporalBatchingResolved, batch: Any, here: TemporalBatchingResolved) -> Any:
    """Training events/s at `batch` of the scenario `r` moved to `here`'s dataset."""
    event = event_model(here)
    return temporal_batch_time(
        batch_events=batch,
        events=train_events(here),
        fixed_cost_per_batch_s=r.fixed_cost_per_batch_s,
        event_time_s=event.time_s,
        parallel_events=event.parallel_events,
    ).events_per_s


@functools.lru_cache(maxsize=64)  # a function of catalog data alone (the sides) and the override
def curve_discontinuity(
    source: DegreeSideSpec, destination: DegreeSideSpec | None, exponent: float | None
) -> NDArray[np.float64]:
    """Discontinuity rate over CURVE_BATCHES of a dataset's sides (read-only: kept for every answer)."""
    source_classes, destination_classes = sides_classes(source, destination, exponent=exponent)
    rate = np.asarray(
        discontinuity_rate(batch_events=CURVE_BATCHES, source=source_classes, destination=destination_classes),
        dtype=np.float64,
    )
    rate.setflags(write=False)
    return rate


def datasets(r: TemporalBatchingResolved) -> tuple[GraphDatasetSpec, ...]:
    """The datasets of the per-dataset studies: every catalog dataset, else the scenario's."""
    return r.figure_datasets or (r.dataset,)


def curves(r: TemporalBatchingResolved) -> dict[str, tuple[Any, Any]]:
    """(events/s, discontinuity rate) over CURVE_BATCHES, per dataset name."""
    return {
        d.name: (
            events_per_s(r, CURVE_BATCHES, replace(r, dataset=d)),
            curve_discontinuity(d.source_side, d.destination_side if d.bipartite else None, r.zipf_exponent_override),
        )
        for d in datasets(r)
    }


def event_work_table(event: EventModel) -> Table:
    cost = event.cost
    return Table(
        key="event_work",
        title="Training work of one event (forward + backward)",
        columns=[Column(key="part", label="part"), Column(key="mflop", label="work", unit="MFLOP")],
        rows=[
            ["memory update (GRU, 2 nodes)", cost.memory_update_flop / 1e6],
            ["embedding (attention, 3 nodes)", cost.embedding_flop / 1e6],
            ["link predictor (2 pairs)", cost.predictor_flop / 1e6],
            ["total", cost.flop / 1e6],
        ],
    )


DATASET_TABLE_TITLE = "Per dataset: discontinuity at the baseline and PRES batches, and the PRES speed-up"


def dataset_table(r: TemporalBatchingResolved) -> Table:
    """Per dataset: discontinuity at the baseline and PRES batches, and the PRES speed-up."""
    rows: list[list[float | int | str | bool | None]] = []
    for d in datasets(r):
        (rate_base, dis_base), (rate_pres, dis_pres) = (
            rates(r, float(r.baseline_batch_events), d),
            rates(r, float(r.baseline_batch_events * r.pres_batch_factor), d),
        )
        rows.append([d.name, d.nodes, d.events, float(dis_base), float(dis_pres), float(rate_pres) / float(rate_base)])
    return Table(
        key="datasets",
        title=DATASET_TABLE_TITLE,
        columns=[
            Column(key="dataset", label="dataset"),
            Column(key="nodes", label="nodes"),
            Column(key="events", label="events"),
            Column(key="rate_baseline", label="discontinuity, baseline batch"),
            Column(key="rate_pres", label="discontinuity, PRES batch"),
            Column(key="speedup", label="speed-up", unit="x"),
        ],
        rows=rows,
    )
