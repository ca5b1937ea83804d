"""The evaluation pools: their state for /health, and the process pool heavy work runs in.

"saturated" when every thread of a pool is busy and requests queue behind them (the API keeps
one limiter per class of work, dse.api.cpu).

Heavy work (plan searches, serving simulations: `ScenarioKind.heavy`) runs in processes of its
own (`HeavyProcessPool`), not in threads of the server's process: Python runs one thread at a time
(the GIL), and a search of several seconds in a thread makes every cheap request of that process
wait for the GIL at each step (a 5 ms evaluation then took ~100-300 ms under a running search).
The deadline travels with the work: its expiry (CLOCK_MONOTONIC is one clock for every process of
the machine) and a cancel flag in shared memory that the server sets when the client goes away;
the worker's loops check both between chunks, as they do in a thread.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import anyio

from dse.scenarios.base import InputError
from dse.services.limits import Deadline, DeadlinePassed

__all__ = ["HeavyProcessPool", "WorkerDeadline", "pool_status"]


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


# -- in the worker process ----------------------------------------------------------------------

_worker_flags: Any = None  # the pool's cancel flags (shared memory), set by `_init_worker`
_worker_catalog: Any = None  # the server's catalog, sent once when the worker starts


#: How often a worker looks whether the server that started it is still there.
PARENT_CHECK_S = 1.0
#: Heavy workers run at a lower CPU priority (Unix niceness) than the server: where the cores are all
#: busy, the kernel runs the server's cheap evaluations, reads and saves first, the searches after.
HEAVY_NICENESS = 10


def _init_worker(flags: Any, catalog: Any, prepare: Callable[[Any], object] | None = None) -> None:
    global _worker_flags, _worker_catalog
    _worker_flags, _worker_catalog = flags, catalog
    if prepare is not None:  # before the first task, at the server's priority: a starting server waits for it
        prepare(catalog)
    if hasattr(os, "nice"):
        os.nice(HEAVY_NICENESS)
    server = os.getppid()

    def exit_with_the_server() -> None:  # a killed server (SIGKILL, a crash) leaves no worker behind
        while os.getppid() == server:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=exit_with_the_server, name="exit-with-the-server", daemon=True).start()


class WorkerDeadline(Deadline):
    """The server's `Deadline` as the worker sees it: the same expiry, and cancelled when the server
    sets this task's flag (its client went away)."""

    def __init__(self, seconds: float, expires: float, slot: int) -> None:
        super().__init__(seconds)
        self.expires, self.slot = expires, slot

    def cancel(self) -> None:
        _worker_flags[self.slot] = 1

    @property
    def cancelled(self) -> bool:
        return bool(_worker_flags[self.slot])

    def __call__(self) -> bool:
        return self.cancelled or time.monotonic() >= self.expires


def _run_task(function: Callable[..., Any], args: tuple[Any, ...], seconds: float, expires: float, slot: int) -> Any:
    """`function(catalog, deadline, *args)` in the worker (the server's catalog); failures come back as
    exceptions that pickle."""
    try:
        return function(_worker_catalog, WorkerDeadline(seconds, expires, slot), *args)
    except (InputError, DeadlinePassed):
        raise
    except Exception as exc:  # e.g. a pydantic error: its type may not pickle, its text does
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from None


# -- in the server process ----------------------------------------------------------------------


class HeavyProcessPool:
    """`processes` worker processes (spawned on first use) for heavy work; see the module docstring.

    At most `slots` tasks may be in flight (the API admits `heavy_threads` at a time, far fewer). Each
    worker runs `prepare(catalog)` when it starts, before its first task (a module-level function).
    """

    def __init__(
        self, processes: int, catalog: Any, slots: int = 256, prepare: Callable[[Any], object] | None = None
    ) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self.processes = processes
        self._flags = context.RawArray("b", slots)
        self._free = list(range(slots))
        self._lock = threading.Lock()
        self._executor = ProcessPoolExecutor(
            processes, mp_context=context, initializer=_init_worker, initargs=(self._flags, catalog, prepare)
        )

    def submit(
        self, function: Callable[..., Any], args: tuple[Any, ...], deadline: Deadline
    ) -> tuple[Future[Any], int]:
        """Starts `function(catalog, worker_deadline, *args)` in a worker (a module-level function: it is
        sent by name); the returned slot is this task's cancel flag."""
        with self._lock:
            if not self._free:
                raise RuntimeError("too many heavy tasks in flight")
            slot = self._free.pop()
        self._flags[slot] = 0
        future = self._executor.submit(_run_task, function, args, deadline.seconds, deadline.expires, slot)
        return future, slot

    def call(self, function: Callable[..., Any], *args: Any, seconds: float = 60.0) -> Any:
        """`function(catalog, deadline, *args)` in a worker, waited for here (at start, not on a request)."""
        future, slot = self.submit(function, args, Deadline(seconds))
        future.add_done_callback(lambda _: self.release(slot))
        try:
            return future.result(timeout=seconds)
        except BaseException:
            self.cancel(slot)
            raise

    def cancel(self, slot: int) -> None:
        """The task in `slot` stops at its next check (its client went away)."""
        self._flags[slot] = 1

    def release(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)

    def warm_up(self) -> None:
        """Starts the worker processes now (each imports the engines, a second or two, and runs `prepare`)
        rather than on the first heavy request."""
        for future in [self._executor.submit(time.sleep, 0) for _ in range(self.processes)]:
            future.result()

    def shutdown(self) -> None:
        """Running work stops at its next check, queued work is dropped; the workers then exit."""
        for slot in range(len(self._flags)):
            self._flags[slot] = 1
        self._executor.shutdown(wait=False, cancel_futures=True)
