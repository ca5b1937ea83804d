"""Scenario kind "inference": batched LLM decode on GPU, NPU, NPU+PIM and NeuPIMs systems."""

from dse.scenarios.kinds.inference.kind import KIND

__all__ = ["KIND"]
