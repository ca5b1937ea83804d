"""Inputs of `temporal_batching`: a dataset (preset or inline), a TGN-style model and an accelerator,
and the resolved tree the engine reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from dse.catalog import Catalog
from dse.scenarios.base import InputError, StrictModel
from dse.scenarios.kinds.temporal_batching.published import PRES_BATCH_FACTOR
from dse.scenarios.presets import preset_or_inline
from dse.specs.hardware import AcceleratorSpec
from dse.specs.workloads import GraphDatasetSpec

#: Resident threads per accelerator: SMs x 2048 threads per SM (NVIDIA A100 and H100 architecture
#: whitepapers: 108 SMs on A100, 132 on H100 SXM5; H200 uses the same GH100 configuration).
RESIDENT_THREADS: dict[str, int] = {
    "a100-40gb": 108 * 2048,
    "a100-80gb": 108 * 2048,
    "h100-sxm": 132 * 2048,
    "h200-sxm": 132 * 2048,
}


class TemporalBatchingInputs(StrictModel):
    """A dataset (preset or inline), a TGN-style model and an accelerator."""

    dataset: str | GraphDatasetSpec = Field("wikipedia", description="graph_datasets preset id or an inline spec.")
    accelerator: str | AcceleratorSpec = Field("a100-80gb", description="accelerators preset id or an inline spec.")
    temporal_batch_events: int = Field(200, ge=1, le=100_000_000, description="Events per temporal batch.")
    baseline_batch_events: int = Field(
        200,
        ge=1,
        le=100_000_000,
        description="Largest batch the baseline trains at without losing accuracy (TGN: 200).",
    )
    pres_batch_factor: float = Field(
        PRES_BATCH_FACTOR, gt=0, le=1000, description="Batch growth PRES allows (paper: 4)."
    )
    train_fraction: float = Field(0.7, gt=0, le=1, description="Share of events in the training split (TGN: 70%).")
    zipf_exponent: float | None = Field(None, ge=0, le=5, description="Overrides every Zipf side's exponent.")
    memory_dim: int = Field(172, ge=1, le=65536, description="Node memory width (TGN default 172).")
    embedding_dim: int = Field(172, ge=1, le=65536, description="Embedding width (TGN: the node feature width, 172).")
    time_dim: int = Field(100, ge=1, le=65536, description="Time encoding width (TGN default 100).")
    neighbors: int = Field(10, ge=1, le=10_000, description="Sampled temporal neighbours (TGN default 10).")
    compute_dtype: Literal["fp32", "tf32", "fp16", "bf16"] = Field("fp32", description="Training math dtype.")
    fixed_cost_per_batch_ms: float = Field(
        5.0,
        ge=1e-6,
        le=1e6,
        description="Per-batch cost independent of its size (launches, neighbour sampling, host work), ms. Assumed.",
    )
    resident_threads: int | None = Field(None, ge=1, le=2**31 - 1, description="Threads the accelerator holds at once.")
    max_discontinuity_rate: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Largest share of a batch's events allowed to miss an earlier event's memory update.",
    )


@dataclass(frozen=True)
class TemporalBatchingResolved:
    """Everything the engine reads, in SI units; numeric leaves are sweepable."""

    dataset: GraphDatasetSpec
    accelerator: AcceleratorSpec
    temporal_batch_events: int
    baseline_batch_events: int
    pres_batch_factor: float
    train_fraction: float
    #: Replaces every Zipf side's own exponent when set.
    zipf_exponent_override: float | None
    memory_dim: int
    embedding_dim: int
    time_dim: int
    neighbors: int
    compute_dtype: str
    fixed_cost_per_batch_s: float
    resident_threads: int
    max_discontinuity_rate: float
    #: Every catalog dataset, for the per-dataset charts; a tuple so sweeps leave it alone.
    figure_datasets: tuple[GraphDatasetSpec, ...] = ()


def resolve(inputs: TemporalBatchingInputs, catalog: Catalog) -> TemporalBatchingResolved:
    """Presets looked up, SI units; an incomplete dataset or an unknown thread count raises InputError."""
    dataset: GraphDatasetSpec = preset_or_inline(catalog, "graph_datasets", inputs.dataset, "dataset")
    accelerator: AcceleratorSpec = preset_or_inline(catalog, "accelerators", inputs.accelerator, "accelerator")
    if dataset.bipartite and dataset.destination_side is None:
        raise InputError("dataset.destination_side", "a bipartite dataset needs its destination side")
    for name, side in (("source_side", dataset.source_side), ("destination_side", dataset.destination_side)):
        if (
            side is not None
            and side.law == "histogram"
            and (not side.histogram_degrees or len(side.histogram_degrees) != len(side.histogram_node_counts))
        ):
            raise InputError(f"dataset.{name}", "a histogram needs as many node counts as degrees")
    threads = inputs.resident_threads or RESIDENT_THREADS.get(accelerator.id)
    if threads is None:
        raise InputError(
            "resident_threads", f"no default for accelerator '{accelerator.id}'; give the threads it holds"
        )
    return TemporalBatchingResolved(
        dataset=dataset,
        accelerator=accelerator,
        temporal_batch_events=inputs.temporal_batch_events,
        baseline_batch_events=inputs.baseline_batch_events,
        pres_batch_factor=inputs.pres_batch_factor,
        train_fraction=inputs.train_fraction,
        zipf_exponent_override=inputs.zipf_exponent,
        memory_dim=inputs.memory_dim,
        embedding_dim=inputs.embedding_dim,
        time_dim=inputs.time_dim,
        neighbors=inputs.neighbors,
        compute_dtype=inputs.compute_dtype,
        fixed_cost_per_batch_s=inputs.fixed_cost_per_batch_ms * 1e-3,
        resident_threads=int(threads),
        max_discontinuity_rate=inputs.max_discontinuity_rate,
        figure_datasets=tuple(catalog.items("graph_datasets")),
    )


def require_scalar_structure(r: TemporalBatchingResolved) -> None:
    """The degree law and the model widths shape the node classes and the event cost: not sweepable."""
    sides = [r.dataset.source_side, r.dataset.destination_side]
    fixed = [r.zipf_exponent_override or 0.0, r.memory_dim, r.embedding_dim, r.time_dim, r.neighbors]
    fixed += [r.dataset.edge_feature_dim] + [v for s in sides if s is not None for v in (s.nodes, s.exponent)]
    if any(np.ndim(v) for v in fixed):
        raise ValueError("the degree law, node counts and model widths are not sweepable; sweep the batch or the costs")
