"""Bounded work: the cost limits, deadlines and pool sizes of evaluations (issue 17).

Every evaluation, sweep and comparison is priced before any engine runs (`ScenarioKind.work`:
plans a search judges, array cells a grid computes, the bytes it holds at once) and refused with
a 422 naming the input that drives the cost when it is above the limit. What runs has a deadline:
long loops (the plan search's chunks, a large sweep's chunks) check it cooperatively and stop;
the API answers 503 saying the deadline passed. The limits are settings of their own (env DSE_*),
kept apart from `dse.settings` so the two can change independently.
"""

from __future__ import annotations

import os
import threading
import time
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from dse.scenarios.base import InputError, Work

__all__ = ["Deadline", "DeadlinePassed", "Limits", "check_work", "get_limits"]


class Limits(BaseSettings):
    """Per-request budgets. Defaults measured on a 2-core machine (see README, "Bounded work")."""

    model_config = SettingsConfigDict(env_prefix="DSE_", extra="ignore")

    #: Wall-clock budget of a cheap evaluation, sweep or comparison, from arrival (queueing included).
    evaluation_deadline_s: float = 10.0
    #: The same for heavy work (plan searches, sweeps above `heavy_sweep_points`).
    heavy_deadline_s: float = 30.0
    #: Training plans one request may judge (a plan search: candidates x node orders x searches).
    #: ~1-4 M plans/s per core, less on large clusters: 1e7 is about 3-12 s (the GPT-3 example judges 5.2e6).
    max_plans: float = 1e7
    #: Engine array cells one request may compute (closed forms: ~1e8-1e9 cells/s).
    max_cells: float = 4e9
    #: Working memory one request may hold at once (its estimate), bytes.
    max_request_bytes: float = float(1 << 30)
    #: Threads of the cheap pool (evaluations, small sweeps, comparisons).
    cheap_threads: int = 2 * (os.cpu_count() or 1)
    #: Threads of the medium pool (evaluations of tens of ms: PIM inference, pruning; ScenarioKind.is_medium):
    #: one at a time holds the GIL beside the cheap threads, never all of them.
    medium_threads: int = 1
    #: Threads of the heavy pool (plan searches, large sweeps): it never takes the cheap pool's threads.
    heavy_threads: int = max(1, (os.cpu_count() or 1) // 2)
    #: Worker processes heavy evaluations run in (dse.services.pools.HeavyProcessPool), apart from the
    #: server's own process so that they never hold its GIL; 0 runs them in the heavy threads instead.
    heavy_processes: int = max(1, (os.cpu_count() or 1) // 2)
    #: A sweep with more points than this runs in the heavy pool.
    heavy_sweep_points: int = 10_000
    #: Memory for answers to unsaved documents evaluated in the server's process, bytes (0: none kept;
    #: dse.services.answers). An answer is 20-40 kB: 32 MiB holds about a thousand.
    answer_cache_bytes: int = 32 << 20


@lru_cache(maxsize=1)
def get_limits() -> Limits:
    return Limits()


class DeadlinePassed(Exception):
    """An evaluation stopped before it finished: its deadline passed, or its client went away."""

    def __init__(self, seconds: float, cancelled: bool = False) -> None:
        self.seconds, self.cancelled = seconds, cancelled
        reason = "the client went away" if cancelled else f"the {seconds:g} s deadline passed"
        super().__init__(f"the evaluation was stopped: {reason}")

    def __reduce__(self) -> tuple[type[DeadlinePassed], tuple[float, bool]]:  # comes back from worker processes
        return type(self), (self.seconds, self.cancelled)


class Deadline:
    """A stop check for one evaluation: true once `seconds` have passed or `cancel()` was called.

    Thread-safe; the worker thread polls it (`__call__`) between chunks, the event loop cancels it.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def __call__(self) -> bool:
        return self._cancelled.is_set() or time.monotonic() >= self.expires

    def passed(self) -> DeadlinePassed:
        return DeadlinePassed(self.seconds, cancelled=self.cancelled)


def check_work(work: Work, limits: Limits | None = None) -> None:
    """Refuses (InputError naming the driving input, 422) work above the request's budget."""
    limits = limits or get_limits()
    if work.unit == "plans" and work.cells > limits.max_plans:
        raise InputError(
            work.driver,
            f"this request would judge {work.cells:.3g} training plans; the limit is {limits.max_plans:.3g} "
            "per request (narrow the search space, the node counts or the batch's divisors)",
        )
    if work.unit == "cells" and work.cells > limits.max_cells:
        raise InputError(
            work.driver,
            f"this request would compute {work.cells:.3g} engine cells; "
            f"the limit is {limits.max_cells:.3g} per request",
        )
    if work.peak_bytes > limits.max_request_bytes:
        raise InputError(
            work.driver,
            f"this request would hold about {work.peak_bytes / 2**20:,.0f} MiB at once; "
            f"the limit is {limits.max_request_bytes / 2**20:,.0f} MiB per request",
        )
