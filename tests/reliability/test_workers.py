"""`dse serve --workers N`: several server processes on one port and one store.

Two processes on loopback with SQLite (WAL) in a temporary file: both answer, a scenario saved
through one is read through the other, and a saved scenario's result computed by one is cached in
the store, where the other reads it (the result cache is the store's `scenario_results` table).
Rate limits, the save quota, the pools and the Validation single-flight stay per process.
"""

from __future__ import annotations

import gc
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.live_server import LiveServer

FIND_BOTH_S = 60.0


def _fresh(base_url: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    """One request on a new connection (so the kernel may hand it to either process)."""
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        return client.request(method, path, **kwargs)  # type: ignore[arg-type]


def _process_of(base_url: str) -> int:
    response = _fresh(base_url, "GET", "/api/v1/health")
    assert response.status_code == 200
    return int(response.json()["server_process"])


def test_two_workers_answer_and_share_saves_and_cached_results(tmp_path: Path) -> None:
    database = tmp_path / "store.sqlite3"
    with LiveServer(f"sqlite:///{database}", tmp_path / "server.log", workers=2) as server:
        seen: set[int] = set()
        deadline = time.monotonic() + FIND_BOTH_S
        while len(seen) < 2 and time.monotonic() < deadline:
            seen.add(_process_of(server.base_url))
        assert len(seen) == 2, f"only process {seen} answered:\n{server.log()}"

        example = next(
            doc
            for doc in _fresh(server.base_url, "GET", "/api/v1/examples").json()
            if doc["kind"] == "temporal_batching"
        )
        saved_ids = []
        for n in range(6):
            document = {
                **example,
                "name": f"saved through either process #{n}",
                "inputs": {**example["inputs"], "temporal_batch_events": 100 + n},
            }
            response = _fresh(server.base_url, "POST", "/api/v1/scenarios", json=document)
            assert response.status_code == 201, response.text
            saved_ids.append(response.json()["id"])
        for scenario_id in saved_ids:  # every save is there for every process
            for _ in range(4):
                assert _fresh(server.base_url, "GET", f"/api/v1/scenarios/{scenario_id}").status_code == 200
        listing = _fresh(server.base_url, "GET", "/api/v1/scenarios", params={"limit": 100}).json()
        assert {item["id"] for item in listing["items"]} >= set(saved_ids)

        results = [_fresh(server.base_url, "GET", f"/api/v1/scenarios/{saved_ids[0]}/result") for _ in range(6)]
        assert all(r.status_code == 200 for r in results)
        first = results[0].json()
        assert all(r.json() == first for r in results)  # one answer, whichever process computed or read it
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        cached = connection.execute(
            "SELECT COUNT(*) FROM scenario_results WHERE scenario_id = ?", (saved_ids[0],)
        ).fetchone()[0]
    assert cached == 1  # computed once, kept in the shared store
    assert "Traceback" not in server.log()


def test_a_killed_server_leaves_no_heavy_worker_behind(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "server.py"
    script.write_text(
        "import os, time\n"
        "from dse.services.pools import HeavyProcessPool\n"
        "if __name__ == '__main__':\n"
        "    pool = HeavyProcessPool(1, catalog=None)\n"
        "    pool.warm_up()\n"
        "    print(pool._executor.submit(os.getpid).result(), flush=True)\n"
        "    time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env)
    try:
        assert server.stdout is not None
        worker = int(server.stdout.readline())
        os.kill(worker, 0)  # the worker runs
        server.send_signal(signal.SIGKILL)  # no shutdown handler runs
        server.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"heavy worker {worker} outlived its server")
    finally:
        if server.poll() is None:
            server.kill()


def test_a_starting_server_takes_the_band_tables_from_its_heavy_worker(monkeypatch: Any) -> None:
    """The published figures behind the error bands (~3 s of CPU) are recomputed in a heavy worker process
    when it starts; the server installs its rows and computes none itself, so no request waits behind
    them on the server's GIL, and then freezes what it built (no full collection walks it again: README, "Load")."""
    from fastapi.testclient import TestClient

    from dse.api.app import create_app
    from dse.scenarios.registry import KINDS
    from dse.services import validation
    from dse.settings import Settings

    def never(kind_name: str, catalog: object) -> list[validation.ValidationRow]:
        raise AssertionError(f"the server computed {kind_name}'s Validation rows itself")

    monkeypatch.setattr(validation, "_TABLE", validation.ValidationTable(compute=never))
    url = f"sqlite:///{tempfile.mkdtemp(prefix='warm-bands-')}/store.sqlite3"
    app = create_app(Settings(database_url=url), start_processes=True)
    gc.unfreeze()
    with TestClient(app) as client:
        assert gc.get_freeze_count() > 100_000  # what it built at start is out of the collector's reach
        rows = validation.cached_validation_rows(app.state.catalog)
        assert set(rows) == set(KINDS) and rows["training"] and rows["inference"]
        example = KINDS["training"].examples()[0]
        assert client.post("/api/v1/evaluate", json=example).status_code == 200  # bands from the installed rows
