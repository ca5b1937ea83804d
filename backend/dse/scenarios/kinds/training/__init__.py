"""Scenario kind "training": memory, time and timeline of one parallel LLM training plan."""

from dse.scenarios.kinds.training.kind import TrainingKind

KIND = TrainingKind()

__all__ = ["KIND"]
