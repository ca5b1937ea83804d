"""Scenario kind "serving": an LLM server under load (continuous batching, paged KV cache, SLOs)."""

from dse.scenarios.kinds.serving.kind import KIND

__all__ = ["KIND"]
