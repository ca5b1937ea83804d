"""Database set-up: migrations (both backends) and SQLite's connection settings."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from tests.support.documents import make_document

from dse.store import Store, StoreError, Unavailable
from dse.store.database import SQLITE_BUSY_TIMEOUT_MS
from dse.store.schema import metadata


def test_migrations_reach_head_and_match_the_table_definitions(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == "0003"
        assert compare_metadata(context, metadata) == []


def test_opening_the_same_database_twice_migrates_once_and_keeps_data(store_url: str) -> None:
    with Store(store_url) as first:
        saved = first.save(make_document())
    with Store(store_url) as second, Store(store_url) as third:
        assert second.get(saved.record.id) == saved.record
        assert third.list().total == 1
        with second.engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


def test_a_database_from_a_newer_release_is_refused_not_damaged(store_url: str) -> None:
    with Store(store_url) as store:
        saved = store.save(make_document())
        with store.engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="9999"):
        Store(store_url)
    engine = sa.create_engine(store_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT id FROM scenarios")).scalar_one() == saved.record.id
    engine.dispose()


# -- SQLite only ----------------------------------------------------------------------------------


def _pragma(store: Store, name: str) -> object:
    with store.engine.connect() as connection:
        return connection.exec_driver_sql(f"PRAGMA {name}").scalar_one()


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'deep' / 'er' / 'scenarios.db'}") as store:  # folders are created
        assert str(_pragma(store, "journal_mode")).lower() == "wal"
        assert _pragma(store, "foreign_keys") == 1
        assert _pragma(store, "busy_timeout") == SQLITE_BUSY_TIMEOUT_MS
    assert (tmp_path / "deep" / "er" / "scenarios.db").exists()


def test_sqlite_concurrent_writers_wait_instead_of_failing(tmp_path: Path) -> None:
    """Two stores (two connection pools, as two processes would have) writing at once: no
    "database is locked", every save lands."""
    url = f"sqlite:///{tmp_path / 'scenarios.db'}"
    stores = [Store(url), Store(url)]
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            for batch in range(10):
                saved = stores[index % 2].save(make_document(batch=batch, writer=index))
                assert saved.owner_token is not None
                stores[index % 2].rename(saved.record.id, f"w{index}", saved.owner_token)
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stores[0].list().total == 40
    for store in stores:
        store.dispose()


def test_in_memory_sqlite_is_one_database_for_every_thread() -> None:
    with Store("sqlite://") as store:
        saved = store.save(make_document())
        seen: list[str] = []
        thread = threading.Thread(target=lambda: seen.append(store.get(saved.record.id).id))
        thread.start()
        thread.join()
        assert seen == [saved.record.id]


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://x/y"])
def test_a_bad_database_url_is_a_store_error(url: str) -> None:
    with pytest.raises(StoreError, match="invalid database URL"):
        Store(url)


def test_an_unreachable_server_is_unavailable() -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    with pytest.raises(Unavailable):
        Store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_threads_opening_a_fresh_database_at_once_migrate_it_once(store_url: str) -> None:
    """Several stores opened together in one process: one migrates, the others find it done."""
    opened: list[Store] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_store() -> None:
        barrier.wait()
        try:
            opened.append(Store(store_url))
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        saved = opened[0].save(make_document())
        assert all(store.get(saved.record.id) == saved.record for store in opened)
    finally:
        for store in opened:
            store.dispose()


_OPEN_ON_GO = """
import sys
from dse.store import Store
print("ready", flush=True)
sys.stdin.readline()
Store(sys.argv[1]).dispose()
"""


def test_processes_opening_a_fresh_database_at_once_migrate_it_once(store_url: str) -> None:
    """Three processes starting together: the advisory lock (PostgreSQL) or BEGIN IMMEDIATE
    (SQLite) lets one migrate; the others wait and find the schema there. Without those locks the
    losers fail creating tables that already exist."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_ON_GO, store_url],
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    # Released together once every interpreter has imported SQLAlchemy and Alembic.
    assert [process.stdout.readline().strip() for process in processes if process.stdout] == ["ready"] * 3
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], outputs
    with Store(store_url) as store, store.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == ["0003"]


def test_migration_retries_while_another_process_holds_the_database(monkeypatch) -> None:
    """Opening waits out a transient lock (another server migrating the same fresh file) instead of failing,
    and still fails, naming the cause, when the database stays unavailable."""
    import dse.store.database as database
    from dse.store import Unavailable

    calls: list[int] = []

    def flaky(engine) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise Unavailable("database unavailable: database is locked")

    monkeypatch.setattr(database, "_migrate_once", flaky)
    monkeypatch.setattr(database.time, "sleep", lambda _s: None)
    database.migrate(None)
    assert len(calls) == 3

    def locked(engine) -> None:
        raise Unavailable("database unavailable: database is locked")

    monkeypatch.setattr(database, "_migrate_once", locked)
    with pytest.raises(Unavailable, match="locked"):
        database.migrate(None)
