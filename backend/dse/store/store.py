"""The scenario store: immutable, content-addressed scenarios with owner tokens and cached results.

See docs/store.md for the schema, the id scheme and the token scheme. In short:

- `save` stores a document under the hash of its content (`dse.store.documents`). Saving content
  that is already saved gives the saver their own named copy: a new scenario with a random id, the
  name they asked for and their own token, referencing the same `content_id`; the earlier scenario
  is untouched and `SaveResult.same_content` names it. Only when the saver shows the token of a
  scenario with the same content and name is that scenario returned (no copy, no token).
- Every save that creates a scenario returns an owner token (`secrets.token_urlsafe(32)`, 256
  random bits); only its SHA-256 is stored, compared in constant time. Only the token holder may
  rename or delete.
- Content never changes after saving. Editing is saving new content with `parent_id` set; renaming
  changes only the name and bumps `revision` (the API's ETag is built from id and revision).
- Deleting removes the scenario and its cached results; children keep their `parent_id`, which then
  points at nothing (`get` of it raises NotFound).
- Every call is one transaction: a call that raises has written nothing.
- Listings are summaries (no document): a page costs the same whatever the documents hold.
- Opening a SQLite file checks its pages first (`PRAGMA quick_check`) and refuses a damaged file
  (`Corrupt`, naming it). A failing database is `Unavailable` with a short reason, logged with its
  cause; `health()` tells whether the store answers now and whether its last write failed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from dse.store.database import check_integrity as check_sqlite_integrity
from dse.store.database import create_store_engine, migrate, transaction
from dse.store.documents import (
    NAME_MAX_LENGTH,
    canonical_json,
    check_document,
    check_text,
    content_of,
    id_for_content_json,
    is_scenario_id,
    random_scenario_id,
    storable_json,
)
from dse.store.errors import Forbidden, InvalidDocument, NotFound, StoreError, Unavailable
from dse.store.schema import ENGINE_VERSION_MAX_LENGTH, scenario_results, scenarios

OWNER_TOKEN_BYTES = 32  # 256 bits of randomness: not guessable, not enumerable
_SAVE_ATTEMPTS = 3  #: a save retried when a concurrent writer took its id first
#: A failed write keeps `health()` "degraded" this long, unless a later write succeeds first.
FAILURE_MEMORY_S = 60.0


@dataclass(frozen=True)
class ScenarioSummary:
    """What a listing shows of a saved scenario: everything but the document (and never the token)."""

    id: str
    kind: str
    name: str
    parent_id: str | None
    created_at: datetime
    updated_at: datetime
    revision: int
    content_id: str  #: the hash of the inputs: equal for every named copy of the same content


@dataclass(frozen=True)
class ScenarioRecord:
    """A saved scenario as stored; `document` carries the current name. Never holds the token."""

    id: str
    kind: str
    name: str
    document: dict[str, Any]
    parent_id: str | None
    created_at: datetime
    updated_at: datetime
    revision: int
    content_id: str  #: the hash of the inputs: equal for every named copy of the same content

    def summary(self) -> ScenarioSummary:
        return ScenarioSummary(
            id=self.id,
            kind=self.kind,
            name=self.name,
            parent_id=self.parent_id,
            created_at=self.created_at,
            updated_at=self.updated_at,
            revision=self.revision,
            content_id=self.content_id,
        )


@dataclass(frozen=True)
class StoreHealth:
    """The store's state as `health()` found it.

    `state` is "ok" or "unavailable"; `reason` says why ("disk full", "unreachable", ...), from the
    probe or from the last failed write (then `last_failure_age_s` says how long ago).
    """

    state: str
    backend: str
    reason: str | None = None
    last_failure_age_s: float | None = None


@dataclass(frozen=True)
class SaveResult:
    """`owner_token` is given once, to whoever created the scenario (`created`), else None.

    `same_content` is the earliest other saved scenario with the same inputs, when this save created
    a named copy of content that was already saved (None otherwise).
    """

    record: ScenarioRecord
    owner_token: str | None
    created: bool
    same_content: ScenarioSummary | None = None


@dataclass(frozen=True)
class Page:
    """One page of a listing, newest first; `total` counts every match, not just this page."""

    items: list[ScenarioSummary]
    total: int
    limit: int
    offset: int


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _token_hash_or_none(token: str | None) -> str | None:
    """The hash of a token a saver showed, or None when there is none usable (absent, empty, not UTF-8)."""
    if not isinstance(token, str) or not token:
        return None
    try:
        return _token_hash(token)
    except UnicodeEncodeError:
        return None


def _owned_by(rows: Sequence[RowMapping], token_hash: str | None, name: str) -> RowMapping | None:
    """The first of `rows` named `name` whose owner token hashes to `token_hash` (constant-time compare)."""
    if token_hash is None:
        return None
    for row in rows:
        if hmac.compare_digest(token_hash, row["owner_token_sha256"]) and row["name"] == name:
            return row
    return None


def _record(row: RowMapping) -> ScenarioRecord:
    content = json.loads(row["content_json"])
    document = {
        "schema_version": content["schema_version"],
        "kind": content["kind"],
        "name": row["name"],
        "inputs": content["inputs"],
    }
    return ScenarioRecord(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        document=document,
        parent_id=row["parent_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        revision=row["revision"],
        content_id=row["content_id"] or row["id"],  # every row has one since migration 0003
    )


def _summary(row: RowMapping) -> ScenarioSummary:
    return ScenarioSummary(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        parent_id=row["parent_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        revision=row["revision"],
        content_id=row["content_id"] or row["id"],  # every row has one since migration 0003
    )


_SUMMARY_COLUMNS = (
    scenarios.c.id,
    scenarios.c.kind,
    scenarios.c.name,
    scenarios.c.parent_id,
    scenarios.c.created_at,
    scenarios.c.updated_at,
    scenarios.c.revision,
    scenarios.c.content_id,
)

_RECORD_COLUMNS = (
    scenarios.c.id,
    scenarios.c.kind,
    scenarios.c.name,
    scenarios.c.content_json,
    scenarios.c.parent_id,
    scenarios.c.created_at,
    scenarios.c.updated_at,
    scenarios.c.revision,
    scenarios.c.content_id,
)


class Store:
    """Scenarios in a SQL database given by a SQLAlchemy URL (SQLite file or PostgreSQL).

    Opening checks a SQLite file's pages (`check_integrity`, unless `check_integrity=False`) and
    migrates the database to the newest schema. Safe to share between threads; call `dispose` (or
    use it as a context manager) to close its connections.
    """

    def __init__(self, url: str, *, check_integrity: bool = True) -> None:
        self._engine = create_store_engine(url)
        self.url_for_display = self._engine.url.render_as_string(hide_password=True)
        # (monotonic time, reason, whether it was a write) of the last failed transaction
        self._last_failure: tuple[float, str, bool] | None = None
        self._health_lock = threading.Lock()
        self._health_cache: tuple[float, StoreHealth] | None = None
        try:
            if check_integrity:
                check_sqlite_integrity(self._engine)
            migrate(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def engine(self) -> sa.Engine:
        """The underlying engine, for diagnostics and tests; the store's tables are its own."""
        return self._engine

    def __repr__(self) -> str:
        return f"Store({self.url_for_display!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Close every pooled connection. The store can still be used; it reconnects on demand."""
        self._engine.dispose()

    # -- health ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, *, write: bool, snapshot: bool = False) -> Iterator[Connection]:
        """`transaction`, remembering a failure (for `health`) until a transaction of its sort succeeds.

        A failed write is forgotten only when a write succeeds (reads still work on a full disk or
        a read-only file); a failed read when anything succeeds.
        """
        try:
            with transaction(self._engine, write=write, snapshot=snapshot) as connection:
                yield connection
        except Unavailable as exc:
            self._last_failure = (time.monotonic(), exc.reason, write)
            self._health_cache = None
            raise
        failure = self._last_failure
        if failure is not None and (write or not failure[2]):
            self._last_failure = None
            self._health_cache = None

    def health(self, max_age_s: float = 0.0) -> StoreHealth:
        """Whether the store answers a trivial query now, and whether a write failed lately.

        A result younger than `max_age_s` is reused; while another thread probes, the last result
        is returned rather than a second probe queued behind the first.
        """
        cached = self._health_cache
        if cached is not None and time.monotonic() - cached[0] < max_age_s:
            return cached[1]
        if not self._health_lock.acquire(blocking=cached is None):
            assert cached is not None  # a non-blocking attempt is made only when there is one
            return cached[1]
        try:
            backend = self._engine.dialect.name
            try:
                with self._transaction(write=False) as connection:
                    connection.execute(sa.select(sa.literal(1))).scalar_one()
            except Unavailable as exc:
                found = StoreHealth(state="unavailable", backend=backend, reason=exc.reason)
            else:
                failure = self._last_failure
                age = None if failure is None else time.monotonic() - failure[0]
                if failure is not None and age is not None and age < FAILURE_MEMORY_S:
                    found = StoreHealth(
                        state="unavailable", backend=backend, reason=failure[1], last_failure_age_s=round(age, 1)
                    )
                else:
                    found = StoreHealth(state="ok", backend=backend)
            self._health_cache = (time.monotonic(), found)
            return found
        finally:
            self._health_lock.release()

    def cached_health(self, max_age_s: float) -> StoreHealth | None:
        """The last `health()` result if younger than `max_age_s`, else None (no query made)."""
        cached = self._health_cache
        if cached is not None and time.monotonic() - cached[0] < max_age_s:
            return cached[1]
        return None

    # -- scenarios -------------------------------------------------------------------------------

    def save(
        self, document: dict[str, Any], *, parent_id: str | None = None, owner_token: str | None = None
    ) -> SaveResult:
        """Save a document as a scenario of the saver's own, and return it with its owner token.

        The first save of a content gets the content id. Saving content that is already saved
        creates a named copy (random id, the name asked for, a new token, the same `content_id`)
        and names the earliest such scenario in `same_content`; nothing saved before changes. When
        `owner_token` owns a scenario with this content and this name, that scenario is returned
        instead (`created` False, no token): saving the same thing twice makes no duplicate.

        Raises InvalidDocument for a malformed document, NotFound if `parent_id` is not saved.
        """
        checked = check_document(document)
        content_json = canonical_json(content_of(checked))
        content_id = id_for_content_json(content_json)
        stored_content = storable_json(content_json)
        if parent_id is not None and not is_scenario_id(parent_id):
            raise NotFound(f"parent scenario {parent_id!r} not found")
        asker = _token_hash_or_none(owner_token)
        token = secrets.token_urlsafe(OWNER_TOKEN_BYTES)
        for attempt in range(_SAVE_ATTEMPTS):
            now = _utcnow()
            try:
                with self._transaction(write=True) as connection:
                    if parent_id is not None and self._row(connection, parent_id) is None:
                        raise NotFound(f"parent scenario {parent_id!r} not found")
                    same = self._same_content_rows(connection, content_id, stored_content)
                    owned = _owned_by(same, asker, checked["name"])
                    if owned is not None:
                        return SaveResult(record=_record(owned), owner_token=None, created=False)
                    scenario_id = content_id
                    if self._row(connection, content_id) is not None:  # a copy, or a 60-bit hash collision
                        scenario_id = self._unused_random_id(connection)
                    connection.execute(
                        scenarios.insert().values(
                            id=scenario_id,
                            content_id=content_id,
                            kind=checked["kind"],
                            name=checked["name"],
                            schema_version=checked["schema_version"],
                            content_json=stored_content,
                            parent_id=parent_id,
                            owner_token_sha256=_token_hash(token),
                            created_at=now,
                            updated_at=now,
                            revision=1,
                        )
                    )
                    created = self._row(connection, scenario_id)
                    assert created is not None  # just inserted in this transaction
                    return SaveResult(
                        record=_record(created),
                        owner_token=token,
                        created=True,
                        same_content=_summary(same[0]) if same else None,
                    )
            except sa.exc.IntegrityError:
                # Another writer took this id between our look-up and our insert (PostgreSQL, READ
                # COMMITTED): look again, the id is taken now and this save becomes a named copy.
                if attempt + 1 == _SAVE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def owned_copy(self, document: dict[str, Any], owner_token: str | None) -> ScenarioRecord | None:
        """The scenario `save(document, owner_token=owner_token)` would return without creating one
        (same content, same name, owned by this token), or None: saving it creates a scenario."""
        asker = _token_hash_or_none(owner_token)
        if asker is None:
            return None
        checked = check_document(document)
        content_json = canonical_json(content_of(checked))
        with self._transaction(write=False) as connection:
            same = self._same_content_rows(connection, id_for_content_json(content_json), storable_json(content_json))
            owned = _owned_by(same, asker, checked["name"])
        return None if owned is None else _record(owned)

    def get(self, scenario_id: str) -> ScenarioRecord:
        """The scenario with this id; NotFound if there is none."""
        with self._transaction(write=False) as connection:
            return _record(self._existing_row(connection, scenario_id))

    def exists(self, scenario_id: str) -> bool:
        """Whether a scenario with this id is saved (a cheap look-up of the id alone)."""
        if not is_scenario_id(scenario_id):
            return False
        with self._transaction(write=False) as connection:
            found = connection.execute(sa.select(scenarios.c.row_id).where(scenarios.c.id == scenario_id)).first()
        return found is not None

    def list(self, *, kind: str | None = None, limit: int = 20, offset: int = 0) -> Page:
        """Summaries of saved scenarios, newest first, optionally of one kind, `limit` from `offset` on."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise StoreError(f"limit must be a positive integer, got {limit!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise StoreError(f"offset must be a non-negative integer, got {offset!r}")
        where = [] if kind is None else [scenarios.c.kind == kind]
        with self._transaction(write=False, snapshot=True) as connection:  # total agrees with items
            total = connection.execute(sa.select(sa.func.count()).select_from(scenarios).where(*where)).scalar_one()
            rows = (
                connection.execute(
                    sa.select(*_SUMMARY_COLUMNS)
                    .where(*where)
                    .order_by(scenarios.c.row_id.desc())
                    .limit(limit)
                    .offset(offset)
                )
                .mappings()
                .all()
            )
        return Page(items=[_summary(row) for row in rows], total=total, limit=limit, offset=offset)

    def rename(self, scenario_id: str, name: str, owner_token: str) -> ScenarioRecord:
        """Give the scenario a new name (owner only); bumps `revision` and `updated_at`."""
        check_text("name", name, max_length=NAME_MAX_LENGTH)
        with self._transaction(write=True) as connection:
            self._check_owner(connection, scenario_id, owner_token)
            connection.execute(
                scenarios.update()
                .where(scenarios.c.id == scenario_id)
                .values(name=name, updated_at=_utcnow(), revision=scenarios.c.revision + 1)
            )
            return _record(self._existing_row(connection, scenario_id))

    def delete(self, scenario_id: str, owner_token: str) -> None:
        """Delete the scenario and its cached results (owner only); its children keep their parent_id.

        Of two deletes of one scenario at once, exactly one succeeds and the other is NotFound: the
        DELETE itself must remove the row. (On PostgreSQL, READ COMMITTED, both may find the row in
        `_check_owner`; the second DELETE then waits for the first to commit and removes nothing.)
        """
        with self._transaction(write=True) as connection:
            self._check_owner(connection, scenario_id, owner_token)
            connection.execute(scenario_results.delete().where(scenario_results.c.scenario_id == scenario_id))
            deleted = connection.execute(scenarios.delete().where(scenarios.c.id == scenario_id)).rowcount
            if deleted != 1:
                raise NotFound(f"scenario {scenario_id!r} not found")  # rolls back the results' deletion too

    # -- cached results --------------------------------------------------------------------------

    def cached_result(self, scenario_id: str, engine_version: str) -> dict[str, Any] | None:
        """The result cached for this scenario by this engine version, or None."""
        _check_engine_version(engine_version)
        if not is_scenario_id(scenario_id):
            return None
        with self._transaction(write=False) as connection:
            text = connection.execute(
                sa.select(scenario_results.c.result_json).where(
                    scenario_results.c.scenario_id == scenario_id,
                    scenario_results.c.engine_version == engine_version,
                )
            ).scalar_one_or_none()
        if text is None:
            return None
        result: dict[str, Any] = json.loads(text)
        return result

    def cache_result(self, scenario_id: str, engine_version: str, result: dict[str, Any]) -> None:
        """Cache (or replace) the result of this scenario under this engine version."""
        _check_engine_version(engine_version)
        if not isinstance(result, dict):
            raise InvalidDocument("result", "must be a JSON object")
        try:
            result_json = storable_json(canonical_json(result))
        except InvalidDocument as exc:
            raise InvalidDocument("result", exc.reason) from exc
        values = {
            "scenario_id": scenario_id,
            "engine_version": engine_version,
            "result_json": result_json,
            "created_at": _utcnow(),
        }
        try:
            with self._transaction(write=True) as connection:
                self._existing_row(connection, scenario_id)
                insert = (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(
                    scenario_results
                )
                connection.execute(
                    insert.values(**values).on_conflict_do_update(
                        index_elements=[scenario_results.c.scenario_id, scenario_results.c.engine_version],
                        set_={"result_json": insert.excluded.result_json, "created_at": insert.excluded.created_at},
                    )
                )
        except sa.exc.IntegrityError as exc:  # the scenario was deleted under us
            raise NotFound(f"scenario {scenario_id!r} not found") from exc

    # -- helpers ---------------------------------------------------------------------------------

    def _row(self, connection: Connection, scenario_id: str) -> RowMapping | None:
        if not is_scenario_id(scenario_id):
            return None
        return (
            connection.execute(
                sa.select(*_RECORD_COLUMNS, scenarios.c.owner_token_sha256).where(scenarios.c.id == scenario_id)
            )
            .mappings()
            .one_or_none()
        )

    def _same_content_rows(self, connection: Connection, content_id: str, stored_content: str) -> Sequence[RowMapping]:
        """Every saved scenario with exactly this content, oldest first (the stored content is compared
        too: two contents sharing a 60-bit content id are not the same scenario)."""
        rows = (
            connection.execute(
                sa.select(*_RECORD_COLUMNS, scenarios.c.owner_token_sha256)
                .where(scenarios.c.content_id == content_id)
                .order_by(scenarios.c.row_id)
            )
            .mappings()
            .all()
        )
        return [row for row in rows if row["content_json"] == stored_content]

    def _unused_random_id(self, connection: Connection) -> str:
        while True:  # 60 random bits: a second round is already a one-in-10^17 event
            candidate = random_scenario_id()
            if self._row(connection, candidate) is None:
                return candidate

    def _existing_row(self, connection: Connection, scenario_id: str) -> RowMapping:
        row = self._row(connection, scenario_id)
        if row is None:
            raise NotFound(f"scenario {scenario_id!r} not found")
        return row

    def _check_owner(self, connection: Connection, scenario_id: str, owner_token: str) -> None:
        row = self._existing_row(connection, scenario_id)
        if not isinstance(owner_token, str) or not owner_token:
            raise Forbidden("an owner token is required")
        try:
            given = _token_hash(owner_token)
        except UnicodeEncodeError as exc:
            raise Forbidden("wrong owner token") from exc
        if not hmac.compare_digest(given, row["owner_token_sha256"]):
            raise Forbidden("wrong owner token")


def _check_engine_version(engine_version: str) -> None:
    check_text("engine_version", engine_version, max_length=ENGINE_VERSION_MAX_LENGTH)
    if not engine_version:
        raise InvalidDocument("engine_version", "must not be empty")
