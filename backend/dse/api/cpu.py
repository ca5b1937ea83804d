"""CPU-heavy requests (evaluations, sweeps, comparisons, results) run in a small pool of their own.

Python runs one thread at a time (the GIL). With FastAPI's default pool (40 threads) a burst of
evaluations puts 40 threads in the GIL queue beside the event loop, which then waits behind all of
them at every step: under 32 concurrent clients on 2 cores a health check took 116 ms at the median
and cheap reads queued behind searches of several seconds. Heavy work gets `CPU_THREADS` threads
(numpy releases the GIL in its large loops, so two per core keeps the cores busy); the default
pool stays for cheap store reads and writes, and the event loop competes with only a few threads.
The work's answer is also encoded to JSON in that pool, not on the event loop.

Two classes of work, one limiter each (issue 17): cheap evaluations (and everything else that
uses this module) in `cpu_limiter`, heavy work (plan searches, large sweeps) in `heavy_limiter`,
so a burst of searches queues behind its own few threads and never holds the cheap ones.
`run_bounded` also gives the work its deadline and cancels it when the client disconnects.
Evaluations of tens of milliseconds (PIM inference, pruning: `ScenarioKind.is_medium`) and the
save-time check of such documents take a third limiter, `medium_limiter` (`Limits.medium_threads`, one):
a burst of them holds one thread beside the cheap ones, not all of them. The GIL's switch interval is
lowered (`GIL_SWITCH_INTERVAL_S`) so that a cheap request waiting for the GIL behind such a thread gets it
after 1 ms rather than Python's default 5 ms.
Heavy evaluations go one step further (`run_in_heavy_process`): they run in worker processes
(dse.services.pools.HeavyProcessPool), so a search never holds this process's GIL either; the
heavy limiter still admits `heavy_threads` at a time and /health reads it as before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

from dse.catalog import Catalog
from dse.services.answers import AnswerCache
from dse.services.bands import validation_tables, warm_residuals
from dse.services.limits import Deadline, get_limits
from dse.services.pools import HeavyProcessPool, pool_status
from dse.services.validation import cached_validation_rows

logger = logging.getLogger("dse.api")

CPU_THREADS = 2 * (os.cpu_count() or 1)
#: How often a running evaluation looks whether its client is still there.
DISCONNECT_POLL_S = 0.1
#: How long a thread holds the GIL while another waits for it (Python's default is 5 ms): a cheap
#: evaluation of a few ms otherwise waits up to 5 ms at each switch behind a medium or encoding thread.
#: Shorter intervals cost a little throughput in switches; 1 ms is well above a switch's cost (~us).
GIL_SWITCH_INTERVAL_S = 0.001

T = TypeVar("T")


def install_cpu_pool(app: FastAPI, catalog: Catalog, *, start_processes: bool = False) -> None:
    """Call in the lifespan: the limiter belongs to the event loop that serves the app. The heavy
    worker processes start on the first heavy request, or now with `start_processes` (a server: each
    worker then builds the error-band tables when it starts, `warm_bands`)."""
    limits = get_limits()
    app.state.cpu_limiter = anyio.CapacityLimiter(limits.cheap_threads)
    app.state.medium_limiter = anyio.CapacityLimiter(limits.medium_threads)
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
    app.state.heavy_limiter = anyio.CapacityLimiter(limits.heavy_threads)
    app.state.answer_cache = AnswerCache(limits.answer_cache_bytes)
    # Rows this process already has (a test starting several apps) go to the workers rather than being rebuilt.
    prepare = partial(warm_residuals, rows=cached_validation_rows(catalog) or None) if start_processes else None
    app.state.heavy_pool = (
        HeavyProcessPool(limits.heavy_processes, catalog, prepare=prepare) if limits.heavy_processes > 0 else None
    )
    if start_processes and app.state.heavy_pool is not None:
        app.state.heavy_pool.warm_up()


def warm_bands(app: FastAPI) -> None:
    """Builds every kind's error-band table before the server answers (a blocking call: run it in a thread).

    The tables hold every published figure recomputed (~3 s of CPU). Built in the server's own process,
    they held its GIL for seconds after start and every evaluation of a kind not yet built (and every
    request queued behind those in the cheap threads) waited for them: cheap evaluations took seconds
    at the start of a load test. A heavy worker builds them when it starts, before it lowers its priority
    (`install_cpu_pool`), and sends the rows; the server only installs them. Without heavy worker
    processes the server builds them here, before it answers."""
    pool: HeavyProcessPool | None = app.state.heavy_pool
    rows = None
    if pool is not None:
        try:
            rows = pool.call(validation_tables)
        except Exception:  # a worker that cannot start or answer: the server builds them itself, as without one
            logger.warning("the heavy worker sent no error-band tables; building them here", exc_info=True)
    warm_residuals(app.state.catalog, rows)


def close_cpu_pool(app: FastAPI) -> None:
    """Call when the lifespan ends: the heavy worker processes exit."""
    if getattr(app.state, "heavy_pool", None) is not None:
        app.state.heavy_pool.shutdown()


def evaluation_pools(app: FastAPI) -> dict[str, Any]:
    """The pools' state for /health ("saturated" when a pool's threads are all busy and as many wait)."""
    return pool_status(
        {"cheap": app.state.cpu_limiter, "medium": app.state.medium_limiter, "heavy": app.state.heavy_limiter}
    )


async def _watching(request: Request, wait: Callable[[], Awaitable[T]], on_disconnect: Callable[[], None]) -> T:
    """`await wait()`, calling `on_disconnect()` if the client goes away meanwhile."""

    async def watch() -> None:
        while not await request.is_disconnected():
            await anyio.sleep(DISCONNECT_POLL_S)
        on_disconnect()

    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        try:
            answer = await wait()
        except Exception as exc:  # raised outside the group, unwrapped (a task group would group it)
            failure = exc
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return answer


def _limiter(request: Request, *, heavy: bool, medium: bool) -> anyio.CapacityLimiter:
    state = request.app.state
    limiter: anyio.CapacityLimiter = (
        state.heavy_limiter if heavy else state.medium_limiter if medium else state.cpu_limiter
    )
    return limiter


async def run_bounded(request: Request, work: Callable[[Deadline], T], *, heavy: bool, medium: bool = False) -> T:
    """`work(deadline)` in the heavy, the medium or the cheap pool, with the class's deadline (counted
    from now, queueing included); the deadline is cancelled when the client disconnects meanwhile."""
    limits = get_limits()
    deadline = Deadline(limits.heavy_deadline_s if heavy else limits.evaluation_deadline_s)
    limiter = _limiter(request, heavy=heavy, medium=medium)
    return await _watching(
        request, lambda: anyio.to_thread.run_sync(lambda: work(deadline), limiter=limiter), deadline.cancel
    )


async def run_in_heavy_process(request: Request, function: Callable[..., T], *args: Any) -> T:
    """`function(catalog, deadline, *args)` in a heavy worker process (a module-level function; `args`
    plain data), admitted by the heavy limiter, with the heavy deadline (counted from now, queueing
    included); cancelled when the client disconnects. Without worker processes
    (`DSE_HEAVY_PROCESSES=0`) it runs in the heavy threads (`run_bounded`)."""
    pool: HeavyProcessPool | None = request.app.state.heavy_pool
    catalog = request.app.state.catalog
    if pool is None:
        return await run_bounded(request, lambda deadline: function(catalog, deadline, *args), heavy=True)
    deadline = Deadline(get_limits().heavy_deadline_s)
    async with request.app.state.heavy_limiter:
        future, slot = pool.submit(function, args, deadline)
        future.add_done_callback(lambda _: pool.release(slot))
        try:
            answer: T = await _watching(request, lambda: asyncio.wrap_future(future), lambda: pool.cancel(slot))
        except BaseException:  # failed, or this request was cancelled: the worker stops at its next check
            pool.cancel(slot)
            raise
        return answer


async def json_bounded(
    request: Request, work: Callable[[Deadline], BaseModel], *, heavy: bool, medium: bool = False
) -> Response:
    """`work(deadline)`'s model as a JSON response, computed and encoded in its pool (`run_bounded`)."""
    body = await run_bounded(
        request, lambda deadline: work(deadline).model_dump_json().encode("utf-8"), heavy=heavy, medium=medium
    )
    return Response(content=body, media_type="application/json")


async def run_cpu_bound(request: Request, work: Callable[[], T], *, medium: bool = False) -> T:
    """`work()` in the CPU pool, or the medium one (waits for a free thread there; the event loop stays free)."""
    return await anyio.to_thread.run_sync(work, limiter=_limiter(request, heavy=False, medium=medium))


async def json_from_cpu_pool(request: Request, work: Callable[[], BaseModel], *, medium: bool = False) -> Response:
    """`work()`'s model as a JSON response, computed and encoded in the CPU pool (or the medium one)."""
    body = await run_cpu_bound(request, lambda: work().model_dump_json().encode("utf-8"), medium=medium)
    return Response(content=body, media_type="application/json")
