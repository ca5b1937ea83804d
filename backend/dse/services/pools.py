"""The evaluation pools' state, for /health: "saturated" when every thread of a pool is busy and
requests queue behind them (the API keeps one limiter per class of work, dse.api.cpu)."""

from __future__ import annotations

from typing import Any

import anyio

__all__ = ["pool_status"]


def pool_status(pools: dict[str, anyio.CapacityLimiter]) -> dict[str, Any]:
    """{"state": "ok" | "saturated", <pool>: {threads, busy, waiting}}; a pool is saturated when all
    its threads are busy and at least as many requests wait as it has threads."""
    found: dict[str, Any] = {}
    saturated = False
    for name, limiter in pools.items():
        stats = limiter.statistics()
        threads = int(stats.total_tokens)
        busy, waiting = int(stats.borrowed_tokens), int(stats.tasks_waiting)
        found[name] = {"threads": threads, "busy": busy, "waiting": waiting}
        saturated |= busy >= threads and waiting >= threads
    return {"state": "saturated" if saturated else "ok", **found}
