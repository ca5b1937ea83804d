"""The `rl_scaling` kind: synchronous PPO on many GPUs (CaRL), rollout vs update.

Answers: how many samples/s a DD-PPO run reaches, how many iterations and gradient steps its
sample target takes and how long, how busy the GPUs and CPUs are, and how all of it moves with
the minibatch size and the GPU count. Engine: dse.engines.rl_scaling.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from dse.catalog import Catalog
from dse.engines.rl_scaling import PPOIterationCost
from dse.scenarios.base import EvaluationResult, MetricSpec, PublishedFigure, ScenarioKind
from dse.scenarios.kinds.rl_scaling import charts, studies
from dse.scenarios.kinds.rl_scaling.examples import EXAMPLES
from dse.scenarios.kinds.rl_scaling.inputs import RLScalingInputs, RLScalingResolved, resolve
from dse.scenarios.kinds.rl_scaling.metrics import METRICS, compute, run_ppo, terms, values_of
from dse.scenarios.kinds.rl_scaling.published import PUBLISHED, wall_time_comparison


def _notes(cost: PPOIterationCost, minibatch_note: str) -> list[str]:
    return [
        minibatch_note,
        f"{float(np.asarray(cost.gpu_busy_fraction)):.1%} of the iteration keeps the GPUs computing: "
        "with a policy this small the run is bound by the simulators' CPU time.",
        "Synchronous rollout: every environment steps, then the policy infers once per GPU; "
        "no straggler spread is modelled.",
    ]


class RLScalingKind(ScenarioKind[RLScalingInputs, RLScalingResolved]):
    kind = "rl_scaling"
    title = "PPO scaling on many GPUs (CaRL)"
    description = (
        "Synchronous PPO (DD-PPO) as in CaRL: environments step their simulators on CPU cores, the policy "
        "runs batched on each GPU, then epochs of minibatch updates all-reduce the gradients. Samples/s, "
        "iterations, gradient steps and wall time to a sample target, GPU and CPU busy fractions."
    )
    engine_version = "1"
    inputs_model = RLScalingInputs
    metric_specs: ClassVar[dict[str, MetricSpec]] = METRICS

    def resolve(self, inputs: RLScalingInputs, catalog: Catalog) -> RLScalingResolved:
        return resolve(inputs, catalog)

    def compute(self, resolved: RLScalingResolved) -> dict[str, Any]:
        return compute(resolved)

    def evaluate(self, resolved: RLScalingResolved) -> EvaluationResult:
        cost = run_ppo(resolved)
        metrics = self.metrics(values_of(resolved, cost), per_metric_terms=terms(resolved, cost))
        split = studies.iteration_split(cost)
        grid = studies.minibatch_grid(resolved)
        samples_per_s = float(np.asarray(cost.samples_per_s))
        minibatch_table, minibatch_note = studies.minibatch_answer(resolved, grid, samples_per_s)
        tables = [
            studies.iteration_split_table(split, float(np.asarray(cost.iteration_s))),
            studies.policy_layers_table(resolved),
            minibatch_table,
        ]
        return EvaluationResult(
            kind=self.kind,
            engine_version=self.engine_version,
            metrics=metrics,
            tables=tables,
            charts=charts.charts(
                grid=grid, current_minibatch=resolved.minibatch_samples, split=split, gpus=int(resolved.num_gpus)
            ),
            notes=_notes(cost, minibatch_note),
            published=wall_time_comparison(resolved, float(np.asarray(cost.wall_time_to_target_s))),
        )

    def examples(self) -> list[dict[str, Any]]:
        return copy.deepcopy(EXAMPLES)

    def published_figures(self) -> Sequence[PublishedFigure]:
        return PUBLISHED


KIND = RLScalingKind()
