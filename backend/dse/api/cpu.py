"""CPU-heavy requests (evaluations, sweeps, comparisons, results) run in a small pool of their own.

Python runs one thread at a time (the GIL). With FastAPI's default pool (40 threads) a burst of
evaluations puts 40 threads in the GIL queue beside the event loop, which then waits behind all of
them at every step: under 32 concurrent clients on 2 cores a health check took 116 ms at the median
and cheap reads queued behind searches of several seconds. Heavy work gets `CPU_THREADS` threads
(numpy releases the GIL in its large loops, so two per core keeps the cores busy); the default
pool stays for cheap store reads and writes, and the event loop competes with only a few threads.
The work's answer is also encoded to JSON in that pool, not on the event loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

CPU_THREADS = 2 * (os.cpu_count() or 1)

T = TypeVar("T")


def install_cpu_pool(app: FastAPI) -> None:
    """Call in the lifespan: the limiter belongs to the event loop that serves the app."""
    app.state.cpu_limiter = anyio.CapacityLimiter(CPU_THREADS)


async def run_cpu_bound(request: Request, work: Callable[[], T]) -> T:
    """`work()` in the CPU pool (waits for a free thread there; the event loop stays free)."""
    return await anyio.to_thread.run_sync(work, limiter=request.app.state.cpu_limiter)


async def json_from_cpu_pool(request: Request, work: Callable[[], BaseModel]) -> Response:
    """`work()`'s model as a JSON response, computed and encoded in the CPU pool."""
    body = await run_cpu_bound(request, lambda: work().model_dump_json().encode("utf-8"))
    return Response(content=body, media_type="application/json")
