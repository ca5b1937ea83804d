"""Where shards run: Dask distributed (the default) or serially in this process (tests, tiny jobs).

Dask: with DSE_DASK_SCHEDULER=tcp://host:8786 the client connects to that scheduler (its workers
must have this package installed: they import dse.services.jobs.grid, dse.scenarios, dse.catalog
and the engines); otherwise an embedded LocalCluster of processes, one single-threaded worker per
core, is started on the first job and kept for the life of the process.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

SCHEDULER_ENV = "DSE_DASK_SCHEDULER"
EXECUTOR_ENV = "DSE_JOBS_EXECUTOR"  # "dask" (default) or "serial"

Task = tuple[int, tuple[Any, ...]]  # (shard number, arguments of the function)


class Executor(Protocol):
    def run(
        self, key: str, function: Callable[..., Any], tasks: list[Task], cancelled: threading.Event
    ) -> Iterator[tuple[int, Any]]:
        """Yields (shard number, result) as shards finish, in any order; stops early once cancelled."""
        ...


class SerialExecutor:
    """Every shard in the calling thread, in order."""

    def run(
        self, key: str, function: Callable[..., Any], tasks: list[Task], cancelled: threading.Event
    ) -> Iterator[tuple[int, Any]]:
        for number, args in tasks:
            if cancelled.is_set():
                return
            yield number, function(*args)


class DaskExecutor:
    """Shards as Dask futures, keyed by job and shard (a resubmitted shard is the same task)."""

    def __init__(self, address: str | None = None, n_workers: int | None = None) -> None:
        self.address = address
        self.n_workers = n_workers
        self._client: Any = None
        self._cluster: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from dask.distributed import Client, LocalCluster  # imported on first use: a heavy import

                if self.address:
                    self._client = Client(self.address)
                else:
                    self._cluster = LocalCluster(
                        n_workers=self.n_workers or os.cpu_count() or 1,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                    )
                    self._client = Client(self._cluster)
                atexit.register(self.close)
            return self._client

    def run(
        self, key: str, function: Callable[..., Any], tasks: list[Task], cancelled: threading.Event
    ) -> Iterator[tuple[int, Any]]:
        from dask.distributed import as_completed

        client = self.client()
        futures = {
            client.submit(function, *args, key=f"{key}-shard-{number}", pure=False, retries=2): number
            for number, args in tasks
        }
        try:
            for future in as_completed(list(futures)):
                if cancelled.is_set():
                    return
                yield futures[future], future.result()
        finally:
            client.cancel(list(futures))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None


def executor_from_environment() -> Executor:
    if os.environ.get(EXECUTOR_ENV, "dask") == "serial":
        return SerialExecutor()
    return DaskExecutor(os.environ.get(SCHEDULER_ENV) or None)
