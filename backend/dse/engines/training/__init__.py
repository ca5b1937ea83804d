"""Memory and time of parallel LLM training plans (dp, tp, pp, sequence parallelism, ZeRO,
recomputation, pipeline schedules, SSD activation offload), vectorised over plans.

Entry point: `evaluate_plans(model=ModelArrays, cluster=ClusterArrays, plan=PlanArrays)`.
"""

from dse.engines.training.codes import Offload, Recompute, Schedule, SequenceParallel, Zero3Runtime
from dse.engines.training.evaluate import PlanEvaluation, evaluate_plans
from dse.engines.training.inputs import ClusterArrays, ModelArrays, PlanArrays
from dse.engines.training.validity import OUT_OF_MEMORY, REASONS, Reason, describe_reasons, plan_reasons

__all__ = [
    "OUT_OF_MEMORY",
    "REASONS",
    "ClusterArrays",
    "ModelArrays",
    "Offload",
    "PlanArrays",
    "PlanEvaluation",
    "Reason",
    "Recompute",
    "Schedule",
    "SequenceParallel",
    "Zero3Runtime",
    "describe_reasons",
    "evaluate_plans",
    "plan_reasons",
]
