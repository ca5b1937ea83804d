"""Engines and migrations: one code path for SQLite and PostgreSQL.

SQLite is set up per connection: WAL journal (readers never block the writer), foreign keys on,
a busy timeout so a second writer waits instead of failing. pysqlite's own transaction handling
does not put DDL inside a transaction and starts read transactions lazily, so it is switched off
(`isolation_level = None`) and the store issues `BEGIN` itself: `BEGIN IMMEDIATE` for writes, which
takes the write lock up front (a deferred read-then-write transaction could fail with "database is
locked" without waiting), plain `BEGIN` for reads.

Migrations run through Alembic's Python API with `script_location` pointing at the `migrations`
folder of this package, inside one transaction; on PostgreSQL an advisory lock serialises two
processes starting at once (on SQLite, `BEGIN IMMEDIATE` does), and a lock serialises threads of
one process (Alembic's `context` proxy is global).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from dse.store.errors import Corrupt, StoreError, Unavailable

logger = logging.getLogger("dse.store")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000  # a writer waits this long for another writer before giving up
PG_CONNECT_TIMEOUT_S = 5
WRITE_OPTION = "dse_store_write"  # execution option marking a connection whose transaction writes
# Any fixed 64-bit key works; derived from a name so it says whose lock it is.
PG_MIGRATION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"dse.store.migrations").digest()[:8], "big", signed=True)
# Alembic's `context` and `op` are module-level proxies: two migrations in one process must not
# interleave, whatever the database's own locking does.
_MIGRATION_THREAD_LOCK = threading.Lock()


def is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def create_store_engine(url: str) -> Engine:
    """An engine for `url`, with the SQLite settings above; creates a SQLite file's folder."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            # A stopped or unreachable server fails within seconds instead of hanging a request.
            connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT_S} if "connect_timeout" not in parsed.query else {}
            return sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise StoreError(f"invalid database URL: {exc}") from exc

    in_memory = is_sqlite_memory(parsed)
    options: dict[str, Any] = {}
    if in_memory:
        # One shared connection, or every pooled connection would see its own empty database.
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    elif not (parsed.database or "").startswith("file:"):
        Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, **options)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, see the module docstring
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS:d}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"SQLite refused WAL journal mode (got {mode!r}) for {parsed.database}")
        finally:
            cursor.close()

    def on_begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    sa.event.listen(engine, "connect", on_connect)
    sa.event.listen(engine, "begin", on_begin)
    return engine


#: SQLite result codes (primary code = extended code & 0xFF) -> the reason shown to clients.
_SQLITE_REASONS = {5: "busy", 6: "busy", 8: "read-only", 10: "I/O error", 11: "damaged", 13: "disk full",
                   14: "cannot open the file", 26: "damaged"}
#: PostgreSQL SQLSTATE (or its class, the first two characters) -> the reason shown to clients.
_PG_REASONS = {"53100": "disk full", "25006": "read-only", "57P01": "unreachable", "57P02": "unreachable",
               "57P03": "unreachable", "08": "unreachable", "53": "out of resources", "55P03": "busy",
               "40P01": "busy", "57014": "busy", "XX001": "damaged", "XX002": "damaged"}


def failure_reason(exc: sa.exc.DBAPIError) -> str:
    """A short classification of a driver error, safe to show a client (no paths, no SQL)."""
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _SQLITE_REASONS.get(code & 0xFF, "database error")
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return _PG_REASONS.get(sqlstate) or _PG_REASONS.get(sqlstate[:2], "database error")
    if exc.connection_invalidated or isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return "unreachable"  # e.g. psycopg could not connect at all: there is no SQLSTATE
    return "database error"


def unavailable(engine: Engine, exc: sa.exc.DBAPIError) -> Unavailable:
    """The `Unavailable` for a driver error, logged once here with its cause."""
    reason = failure_reason(exc)
    cause = str(exc.orig).strip() or type(exc.orig).__name__
    where = engine.url.render_as_string(hide_password=True)
    logger.error("scenario store %s failed (%s): %s: %s", where, reason, type(exc.orig).__name__, cause)
    return Unavailable(f"database unavailable ({reason}): {cause}", reason=reason)


@contextlib.contextmanager
def transaction(engine: Engine, *, write: bool, snapshot: bool = False) -> Iterator[Connection]:
    """One transaction: committed when the block ends, rolled back if it raises.

    `snapshot` makes every statement see the same state on PostgreSQL (REPEATABLE READ; its
    default, READ COMMITTED, takes a new snapshot per statement); a SQLite transaction always does.

    Every driver failure (lost connection, lock timeout, full disk, read-only file, damaged file)
    becomes `Unavailable`, logged with its cause; integrity errors pass through for the caller to
    interpret.
    """
    try:
        with engine.connect() as connection:
            if write:
                connection.execution_options(**{WRITE_OPTION: True})
            if snapshot and engine.dialect.name == "postgresql":
                connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                yield connection
    except sa.exc.IntegrityError:
        raise
    except sa.exc.DBAPIError as exc:
        raise unavailable(engine, exc) from exc


def sqlite_file(engine: Engine) -> Path | None:
    """The database file of a file-backed SQLite engine, else None."""
    if engine.dialect.name != "sqlite" or is_sqlite_memory(engine.url):
        return None
    database = engine.url.database or ""
    if database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
    return Path(database)


def check_integrity(engine: Engine) -> None:
    """Raise `Corrupt`, naming the file, when an existing SQLite file fails `PRAGMA quick_check`.

    quick_check reads every page (O(size), without the index-content cross-check of
    integrity_check): a page overwritten on disk, a truncated file or a file that is not a SQLite
    database at all is found before the server serves anything from it. PostgreSQL checks its own
    pages (checksums) and is not scanned here.
    """
    path = sqlite_file(engine)
    if path is None or not path.exists() or path.stat().st_size == 0:
        return
    try:
        with engine.connect() as connection:
            rows = [str(row[0]) for row in connection.exec_driver_sql("PRAGMA quick_check(5)")]
    except sa.exc.DBAPIError as exc:
        if failure_reason(exc) != "damaged":
            raise unavailable(engine, exc) from exc
        rows = [str(exc.orig)]
    if rows != ["ok"]:
        finding = "; ".join(line.strip() for row in rows for line in row.splitlines() if line.strip())
        logger.error("scenario store %s is damaged: %s", path, finding)
        raise Corrupt(str(path), f"SQLite quick_check: {finding}")


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic Config for the store's migrations, on an open connection or a URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


#: Start-up attempts when another process holds the database (e.g. several servers opening a fresh
#: SQLite file at once, where switching it to WAL can answer "locked" without waiting).
MIGRATION_ATTEMPTS = 6


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema, retrying briefly while another process holds it."""
    for attempt in range(MIGRATION_ATTEMPTS):
        try:
            _migrate_once(engine)
            return
        except Unavailable:
            if attempt == MIGRATION_ATTEMPTS - 1:
                raise
            time.sleep(0.1 * 2**attempt)  # 0.1 .. 1.6 s, 3.1 s in all


def _migrate_once(engine: Engine) -> None:
    """Alembic `upgrade head` in one write transaction; a no-op when the schema is there."""
    with _MIGRATION_THREAD_LOCK, transaction(engine, write=True) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
        try:
            command.upgrade(alembic_config(connection), "head")
        except CommandError as exc:  # e.g. a database written by a newer release
            raise StoreError(f"cannot migrate the scenario database: {exc}") from exc
