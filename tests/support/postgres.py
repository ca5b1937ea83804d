"""A throwaway PostgreSQL server for tests, started from the binaries Debian installs.

`throwaway_postgres()` runs `initdb` into a temporary directory, starts the server on a free
loopback port (unix socket inside the same directory, so nothing else on the machine is touched),
yields a `PostgresServer` that creates empty databases on demand, then stops the server and removes
the directory. As root, the server commands run as the `postgres` system user, because `initdb`
refuses to run as root.

Where the binaries are missing the tests that need them skip, unless `DSE_REQUIRE_POSTGRES=1`
(CI sets it), in which case they fail and say why. `DSE_TEST_POSTGRES_URL`
(`postgresql+psycopg://user@host:port/db`, a role allowed to CREATE DATABASE) uses an existing
server instead of starting one.

Durability is switched off (`fsync=off`, `full_page_writes=off`): a process crash still loses
nothing committed, only an OS crash could, and the data is thrown away anyway.

Creating a database costs about 0.25 s here, so the `postgres_url` fixture creates one per session
and empties it (drops and recreates the `public` schema, a few ms) before each test.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

REQUIRE_ENV = "DSE_REQUIRE_POSTGRES"
EXISTING_SERVER_ENV = "DSE_TEST_POSTGRES_URL"
BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"
START_TIMEOUT_S = 30
START_ATTEMPTS = 3  # a free port can be taken between probing and binding; retry with another


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be had here (binaries missing, or no user to run them as root)."""


def postgres_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") == "1"


def find_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory holding both initdb and pg_ctl."""

    def major(path: str) -> float:
        version = Path(path).parent.name
        try:
            return float(version)
        except ValueError:
            return -1.0

    for candidate in sorted(glob.glob(BIN_GLOB), key=major, reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """A running server reachable at `host:port` as a superuser, with no password (trust)."""

    host: str
    port: int
    user: str
    password: str | None = None
    admin_database: str = "postgres"
    _counter: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def url(self, database: str) -> str:
        """A SQLAlchemy URL (psycopg 3 driver) for `database` on this server."""
        auth = self.user if self.password is None else f"{self.user}:{self.password}"
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.admin_database,
            autocommit=True,
        )

    def create_database(self, prefix: str = "test") -> str:
        """Create an empty database with a fresh name and return its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        return self.url(name)

    def reset_database(self, url: str) -> None:
        """Empty a database: end its other sessions, then drop and recreate the `public` schema."""
        name = url.rsplit("/", 1)[1]
        with self._admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=name, autocommit=True
        ) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")

    def drop_database(self, url: str) -> None:
        """Drop a database made by `create_database`, closing any connection left to it."""
        name = url.rsplit("/", 1)[1]
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _as_server_user(command: list[str]) -> list[str]:
    """Run as the `postgres` system user when we are root; initdb refuses root."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root and `runuser` is missing, so initdb cannot run")
    try:
        import pwd

        pwd.getpwnam(SUPERUSER)
    except KeyError as exc:
        raise PostgresUnavailable(f"running as root and there is no `{SUPERUSER}` system user") from exc
    return ["runuser", "-u", SUPERUSER, "--", *command]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {done.stdout}\n{done.stderr}")


def _server_from_url(url: str) -> PostgresServer:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return PostgresServer(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or SUPERUSER,
        password=parsed.password,
        admin_database=parsed.database or "postgres",
    )


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[PostgresServer]:
    """Start a private server for the duration of the block (see the module docstring).

    Raises `PostgresUnavailable` when there is nothing to start; any other failure to start is an
    error (a broken installation should not pass as "not installed").
    """
    existing = os.environ.get(EXISTING_SERVER_ENV)
    if existing:
        yield _server_from_url(existing)
        return

    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(f"no initdb/pg_ctl under {BIN_GLOB} (Debian package `postgresql`)")

    root = Path(tempfile.mkdtemp(prefix="dse-pg-"))
    data_dir, socket_dir, log_file = root / "data", root / "sockets", root / "server.log"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        import pwd

        try:
            server_user = pwd.getpwnam(SUPERUSER)
        except KeyError as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable(f"running as root and there is no `{SUPERUSER}` system user") from exc
        for path in (root, socket_dir):
            os.chown(path, server_user.pw_uid, server_user.pw_gid)
    pg_ctl = str(bin_dir / "pg_ctl")
    started = False
    try:
        _run(
            _as_server_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--locale=C",
                ]
            ),
            "initdb",
        )
        last_error: Exception | None = None
        for _ in range(START_ATTEMPTS):
            port = _free_port()
            options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
            command = [
                pg_ctl,
                "-D",
                str(data_dir),
                "-l",
                str(log_file),
                "-o",
                options,
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "start",
            ]
            try:
                _run(_as_server_user(command), "pg_ctl start")
            except RuntimeError as exc:
                log = log_file.read_text(errors="replace") if log_file.exists() else ""
                last_error = RuntimeError(f"{exc}\nserver log:\n{log}")
                continue
            started = True
            break
        if not started:
            raise RuntimeError(f"PostgreSQL did not start after {START_ATTEMPTS} attempts: {last_error}")
        yield PostgresServer(host="127.0.0.1", port=port, user=SUPERUSER)
    finally:
        if started:
            # Immediate mode: no checkpoint, the data is thrown away.
            subprocess.run(
                _as_server_user([pg_ctl, "-D", str(data_dir), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


# -- pytest fixtures: import them into a conftest.py (`from tests.support.postgres import postgres_url`) --


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway server for the whole session; skips (or fails under DSE_REQUIRE_POSTGRES=1)."""
    try:
        with throwaway_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        if postgres_required():
            pytest.fail(f"{REQUIRE_ENV}=1 but PostgreSQL cannot be started here: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL not available: {exc} (set {REQUIRE_ENV}=1 to make this a failure)")


@pytest.fixture(scope="session")
def postgres_session_database(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, postgres_session_database: str) -> str:
    """The URL of an empty database on the session's server (emptied before each test)."""
    postgres_server.reset_database(postgres_session_database)
    return postgres_session_database
