"""The store tells the truth (issue 17): bounded listings and text, one winner of concurrent deletes,
damaged files refused at start, failures reported with their reason (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.support.documents import make_document
from tests.support.postgres import PostgresUnavailable, postgres_required, throwaway_postgres

from dse.store import Corrupt, InvalidDocument, NotFound, ScenarioSummary, Store, Unavailable
from dse.store import store as store_module
from dse.store.documents import ID_MAX_LENGTH, NAME_MAX_LENGTH, SOURCE_MAX_LENGTH, TEXT_MAX_LENGTH

# -- listings and text limits ---------------------------------------------------------------------


def test_a_listing_holds_summaries_and_never_reads_the_documents(store: Store) -> None:
    saved = store.save(make_document(notes="n" * 3000)).record
    page = store.list()
    assert page.items == [saved.summary()]
    assert isinstance(page.items[0], ScenarioSummary) and not hasattr(page.items[0], "document")


@pytest.mark.parametrize(
    ("inputs", "field", "limit"),
    [
        ({"accelerator": {"id": "i" * (ID_MAX_LENGTH + 1)}}, "inputs.accelerator.id", ID_MAX_LENGTH),
        ({"memory_id": "i" * (ID_MAX_LENGTH + 1)}, "inputs.memory_id", ID_MAX_LENGTH),
        ({"model": {"name": "n" * (NAME_MAX_LENGTH + 1)}}, "inputs.model.name", NAME_MAX_LENGTH),
        ({"model": {"source": "s" * (SOURCE_MAX_LENGTH + 1)}}, "inputs.model.source", SOURCE_MAX_LENGTH),
        ({"a": {"notes": "s" * (SOURCE_MAX_LENGTH + 1)}}, "inputs.a.notes", SOURCE_MAX_LENGTH),
        (
            {"a": {"calibration_source": "s" * (SOURCE_MAX_LENGTH + 1)}},
            "inputs.a.calibration_source",
            SOURCE_MAX_LENGTH,
        ),
        (
            {"a": {"field_sources": {"hbm": "s" * (SOURCE_MAX_LENGTH + 1)}}},
            "inputs.a.field_sources.hbm",
            SOURCE_MAX_LENGTH,
        ),
        ({"mix": [{"label": "x"}, {"label": "x" * (TEXT_MAX_LENGTH + 1)}]}, "inputs.mix.1.label", TEXT_MAX_LENGTH),
    ],
)
def test_free_text_is_bounded_per_field(store: Store, inputs: dict[str, Any], field: str, limit: int) -> None:
    with pytest.raises(InvalidDocument) as refused:
        store.save(make_document(**inputs))
    assert refused.value.field == field and f"at most {limit} characters" in refused.value.reason
    assert store.list().total == 0


def test_text_at_its_limits_is_saved_and_the_name_is_bounded(store: Store) -> None:
    document = make_document(
        name="n" * NAME_MAX_LENGTH,
        accelerator={"id": "i" * ID_MAX_LENGTH, "source": "s" * SOURCE_MAX_LENGTH, "field_sources": {"x": "s" * 4000}},
        other="o" * TEXT_MAX_LENGTH,
    )
    saved = store.save(document)
    assert store.get(saved.record.id).document == document
    with pytest.raises(InvalidDocument, match="at most 200"):
        store.save(make_document(name="n" * (NAME_MAX_LENGTH + 1)))
    assert saved.owner_token is not None
    with pytest.raises(InvalidDocument) as refused:
        store.rename(saved.record.id, "n" * (NAME_MAX_LENGTH + 1), saved.owner_token)
    assert refused.value.field == "name"
    with pytest.raises(InvalidDocument, match="key"):
        store.save(make_document(**{"k" * 201: 1}))


# -- concurrent deletes -----------------------------------------------------------------------------


def test_concurrent_deletes_of_one_scenario_exactly_one_succeeds(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both deletes pass the owner check before either deletes (a barrier right after the check):
    on PostgreSQL (READ COMMITTED) both then find the row; the second DELETE waits for the first to
    commit and removes nothing, which must be NotFound, not a second success. On SQLite the first
    holds the write lock, so the barrier times out and the second finds no row."""
    check_owner = Store._check_owner
    barrier = threading.Barrier(2, timeout=0.5 if store.engine.dialect.name == "sqlite" else 10)

    def check_then_wait(self: Store, *args: Any) -> None:
        check_owner(self, *args)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()

    monkeypatch.setattr(Store, "_check_owner", check_then_wait)
    saved = store.save(make_document())
    assert saved.owner_token is not None
    store.cache_result(saved.record.id, "v1", {"x": 1})
    outcomes: list[str] = []

    def delete() -> None:
        try:
            store.delete(saved.record.id, saved.owner_token or "")
            outcomes.append("deleted")
        except NotFound:
            outcomes.append("not found")

    threads = [threading.Thread(target=delete) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["deleted", "not found"]
    assert not store.exists(saved.record.id) and store.cached_result(saved.record.id, "v1") is None


def test_a_delete_that_removes_nothing_is_not_found_and_rolls_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rowcount check alone: the row vanishes between the owner check and the DELETE (here in
    the same transaction, as a concurrent delete committing in between would make it)."""
    saved = store.save(make_document())
    store.cache_result(saved.record.id, "v1", {"x": 1})
    check_owner = Store._check_owner

    def check_then_vanish(self: Store, connection: sa.Connection, scenario_id: str, token: str) -> None:
        check_owner(self, connection, scenario_id, token)
        connection.execute(store_module.scenarios.delete().where(store_module.scenarios.c.id == scenario_id))

    monkeypatch.setattr(Store, "_check_owner", check_then_vanish)
    with pytest.raises(NotFound):
        store.delete(saved.record.id, saved.owner_token or "")
    monkeypatch.undo()
    assert store.exists(saved.record.id)  # all of it rolled back
    assert store.cached_result(saved.record.id, "v1") == {"x": 1}


# -- damaged files ---------------------------------------------------------------------------------

PAGE = 4096


def _filled_store_file(path: Path) -> None:
    with Store(f"sqlite:///{path}") as store:
        for batch in range(120):
            store.save(make_document(batch=batch, text="x" * 400))
    assert not Path(f"{path}-wal").exists()  # checkpointed into the file when the last connection closed
    assert path.stat().st_size > 20 * PAGE


@pytest.mark.parametrize("page", [0, 1, 3, 10], ids=["header", "schema", "table", "later"])
def test_a_sqlite_file_with_an_overwritten_page_is_refused_naming_the_file(tmp_path: Path, page: int) -> None:
    path = tmp_path / "scenarios.sqlite3"
    _filled_store_file(path)
    data = bytearray(path.read_bytes())
    data[page * PAGE : (page + 1) * PAGE] = b"\xa5" * PAGE
    path.write_bytes(bytes(data))
    with pytest.raises(Corrupt) as refused:
        Store(f"sqlite:///{path}")
    message = str(refused.value)
    assert str(path) in message and "damaged" in message and "backup" in message
    assert refused.value.path == str(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 500)
    with pytest.raises(Corrupt, match="file is not a database"):
        Store(f"sqlite:///{path}")


def test_a_healthy_file_opens_and_the_check_can_be_skipped(tmp_path: Path) -> None:
    path = tmp_path / "scenarios.sqlite3"
    _filled_store_file(path)
    with Store(f"sqlite:///{path}") as store:
        assert store.list().total == 120
    data = bytearray(path.read_bytes())
    data[10 * PAGE : 11 * PAGE] = b"\xa5" * PAGE
    path.write_bytes(bytes(data))
    Store(f"sqlite:///{path}", check_integrity=False).dispose()  # opens: nothing reads that page at start


# -- failures, reasons and health -------------------------------------------------------------------


def _on_every_connection(store: Store, pragma: str) -> None:
    sa.event.listen(store.engine, "connect", lambda dbapi_connection, _record: dbapi_connection.execute(pragma))
    store.engine.dispose()


def test_sqlite_full_disk_is_unavailable_logged_and_remembered_by_health(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Store(f"sqlite:///{tmp_path / 'full.sqlite3'}") as store:
        saved = store.save(make_document())
        assert store.health().state == "ok"
        _on_every_connection(store, "PRAGMA max_page_count = 1")
        with caplog.at_level("ERROR", logger="dse.store"), pytest.raises(Unavailable) as failed:
            store.save(make_document(batch=2, notes="x" * 4000))
        assert failed.value.reason == "disk full"
        assert any(
            "database or disk is full" in r.getMessage() and "full.sqlite3" in r.getMessage() for r in caplog.records
        )
        assert store.get(saved.record.id).id == saved.record.id  # reading still works
        health = store.health()
        assert (health.state, health.reason, health.backend) == ("unavailable", "disk full", "sqlite")
        assert health.last_failure_age_s is not None and store.cached_health(60.0) == health
    with Store(f"sqlite:///{tmp_path / 'full.sqlite3'}") as reopened:
        reopened.save(make_document(batch=3))
        assert reopened.health().state == "ok"


def test_a_successful_write_clears_a_remembered_write_failure(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'ro.sqlite3'}") as store:
        listener = lambda dbapi_connection, _record: dbapi_connection.execute("PRAGMA query_only = 1")  # noqa: E731
        sa.event.listen(store.engine, "connect", listener)
        store.engine.dispose()
        with pytest.raises(Unavailable) as failed:
            store.save(make_document())
        assert failed.value.reason == "read-only"
        assert store.health().reason == "read-only"
        sa.event.remove(store.engine, "connect", listener)
        store.engine.dispose()
        store.save(make_document())
        assert store.health().state == "ok"


@pytest.mark.postgres
def test_a_stopped_postgresql_is_unavailable_and_health_says_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    """A private server (not the session's): started, used, stopped under the open store."""
    pytest.importorskip("psycopg")
    try:
        server_context = throwaway_postgres()
        server = server_context.__enter__()
    except PostgresUnavailable as exc:
        if postgres_required():
            pytest.fail(f"PostgreSQL required but unavailable: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    stopped = False
    try:
        store = Store(server.create_database())
        saved = store.save(make_document())
        assert store.health().state == "ok"
        server_context.__exit__(None, None, None)
        stopped = True
        with caplog.at_level("ERROR", logger="dse.store"):
            with pytest.raises(Unavailable) as failed:
                store.get(saved.record.id)
            assert failed.value.reason == "unreachable"
            with pytest.raises(Unavailable):
                store.save(make_document(batch=2))
            health = store.health()
        assert (health.state, health.reason, health.backend) == ("unavailable", "unreachable", "postgresql")
        assert any("unreachable" in record.getMessage() for record in caplog.records), caplog.text
        store.dispose()
    finally:
        if not stopped:
            server_context.__exit__(None, None, None)
