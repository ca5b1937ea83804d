"""Scenario kind "plan_search": the fastest parallel training plans that fit a model on a cluster."""

from dse.scenarios.kinds.plan_search.kind import PlanSearchKind

KIND = PlanSearchKind()

__all__ = ["KIND"]
