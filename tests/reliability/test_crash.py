"""Crash safety: SIGKILL the server while saves are in flight; every acknowledged save survives.

Promise (docs/reliability.md, "crashes"): a save answered 200/201 with an id is committed, so it
is there, unchanged, after the process dies without warning and restarts on the same database.
Run on a SQLite file (WAL) and on PostgreSQL (tests/support/postgres.py: a throwaway server,
mandatory under DSE_REQUIRE_POSTGRES=1). The server is the real one (`python -m dse.cli serve`)
in a child process, so the kill is a real SIGKILL of the process holding the connections.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dse.scenarios.documents import document_json, parse_document
from dse.scenarios.registry import KINDS
from tests.reliability.live_server import LiveServer
from tests.support.postgres import postgres_server, postgres_session_database, postgres_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow

WRITERS = 8  # concurrent clients, each saving new documents back to back
ACKNOWLEDGED_BEFORE_KILL = 40  # kill once this many saves were answered, with more in flight
BASE = KINDS["temporal_batching"].examples()[0]  # the cheapest kind to validate: saves stay store-bound


def _document(n: int) -> dict[str, Any]:
    return {**BASE, "name": f"crash test #{n} <b>ü</b>", "inputs": {**BASE["inputs"], "temporal_batch_events": 100 + n}}


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crash.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_every_acknowledged_save_survives_sigkill(database_url: str, tmp_path: Path) -> None:
    acknowledged: dict[str, dict[str, Any]] = {}  # id -> the normalised document that was sent
    failures_after_kill: list[str] = []
    lock = threading.Lock()
    counter = iter(range(1_000_000))
    killed = threading.Event()

    server = LiveServer(database_url, tmp_path / "server.log").start()

    def writer() -> None:
        with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
            while not killed.is_set():
                with lock:
                    n = next(counter)
                document = _document(n)
                try:
                    response = client.post("/api/v1/scenarios", json=document)
                except httpx.TransportError as exc:
                    if not killed.is_set():
                        raise
                    failures_after_kill.append(type(exc).__name__)
                    return
                assert response.status_code == 201, response.text  # every document is new content
                with lock:
                    acknowledged[response.json()["id"]] = document_json(parse_document(document))

    threads = [threading.Thread(target=writer, daemon=True) for _ in range(WRITERS)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < ACKNOWLEDGED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.01)
        killed.set()  # first, so a writer whose request dies knows why
        server.kill()
        for thread in threads:
            thread.join(timeout=15)
    finally:
        server.kill()
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL, server.log()
    assert failures_after_kill, "no save was in flight at the kill"

    with (
        LiveServer(database_url, tmp_path / "server.log") as restarted,  # __enter__ starts it (once)
        httpx.Client(base_url=restarted.base_url, timeout=10.0) as client,
    ):
        for scenario_id, sent in acknowledged.items():
            response = client.get(f"/api/v1/scenarios/{scenario_id}")
            assert response.status_code == 200, (scenario_id, response.text)
            assert response.json()["document"] == sent
            assert response.json()["revision"] == 1
        listed = client.get("/api/v1/scenarios", params={"limit": 1}).json()["total"]
        # Unacknowledged saves may or may not have landed (committed before the answer was sent).
        assert len(acknowledged) <= listed <= len(acknowledged) + WRITERS

    if database_url.startswith("sqlite"):
        engine = sa.create_engine(database_url)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        engine.dispose()
