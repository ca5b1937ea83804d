"""Scenario kind `temporal_batching`: temporal batch size of memory-based dynamic GNNs (PRES, ICLR'24)."""

from dse.scenarios.kinds.temporal_batching.kind import KIND

__all__ = ["KIND"]
