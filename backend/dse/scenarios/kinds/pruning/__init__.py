"""Scenario kind `pruning`: prompt-routed pruned diffusion models under a compute budget (APTP)."""

from __future__ import annotations

from dse.scenarios.kinds.pruning.kind import KIND

__all__ = ["KIND"]
