"""Scenario kind `rl_scaling`: synchronous PPO on many GPUs (CaRL), rollout vs update."""

from dse.scenarios.kinds.rl_scaling.kind import KIND

__all__ = ["KIND"]
