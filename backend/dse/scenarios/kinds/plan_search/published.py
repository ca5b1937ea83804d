"""Published figures beside a plan search: on a Narayanan et al. (SC'21) Table 1 setting, the plan
Megatron-LM published, evaluated by the same engine, beside the best plan found.

The plan search's own claims (the published plan is a candidate and fits; the best plan found is at
least as fast by the engine) are behaviour tests (tests/engines/test_plan_search_validation.py); the
published throughput of those plans is the training kind's record (kinds/training/published.py), so
this kind holds no records of its own.
"""

from __future__ import annotations

import numpy as np

from dse.engines.plan_search.search import RankedPlans
from dse.engines.training import ModelArrays, evaluate_plans
from dse.scenarios.base import PublishedComparison, PublishedFigure, Tolerance
from dse.scenarios.kinds.plan_search.inputs import ResolvedPlanSearch
from dse.scenarios.shared.megatron import (
    NARAYANAN_TABLE1,
    RUN_TABLE_1,
    RUN_TABLE_1_SOURCE,
    TABLE1_SOURCE,
    published_plan,
)
from dse.scenarios.shared.training_device import training_cluster

PUBLISHED: tuple[PublishedFigure, ...] = ()


def published_comparisons(r: ResolvedPlanSearch, top: RankedPlans) -> list[PublishedComparison]:
    """Narayanan et al. SC'21 Table 1: the published plan on the same setting, beside the best found."""
    row = NARAYANAN_TABLE1.get(r.model.id)
    if row is None or not len(top):
        return []
    t, p, gpus, batch, published = row
    if (gpus, batch, r.sequence_length_tokens) != (r.cluster.gpus, r.global_batch_size, 2048):
        return []
    micro, chunks, _ = RUN_TABLE_1[r.model.id]
    evaluation = evaluate_plans(
        model=ModelArrays.from_llm(r.model),
        cluster=training_cluster(r.cluster, r.dtype, r.software_stack, r.kernel_fits or {}),
        plan=published_plan(r.model.id),
    )
    fits = bool(np.asarray(evaluation.fits).reshape(-1)[0])
    published_time = float(np.asarray(evaluation.iteration_time_s).reshape(-1)[0])
    best_time = float(top.evaluation.iteration_time_s[0])
    plan = f"t {t} x p {p} x dp {gpus // (t * p)}, micro-batch {micro}" + (f", {chunks} chunks" if chunks > 1 else "")
    source = f"{TABLE1_SOURCE}; micro-batch, chunks and DDP from {RUN_TABLE_1_SOURCE}"
    return [
        PublishedComparison.of(
            quantity="achieved TFLOP/s per GPU of the published plan",
            published=published,
            engine=float(np.asarray(evaluation.achieved_flops_per_gpu).reshape(-1)[0]) / 1e12,
            unit="TFLOP/s",
            tolerance=Tolerance.within(0.12),
            source=source,
            note=f"published plan: {plan}; {'fits' if fits else 'does not fit'} in GPU memory by the engine",
        ),
        PublishedComparison.of(
            quantity="iteration time of the best plan found (engine)",
            published=None,
            published_text=f"the published plan ({plan}): {published_time:.4g} s per iteration by the engine",
            engine=best_time,
            unit="s",
            source=source,
            note=f"best plan found / published plan = {best_time / published_time:.3f} (both by the engine)",
            role="context",
        ),
    ]
