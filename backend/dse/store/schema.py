"""The store's tables (SQLAlchemy Core), as the migrations (0001 to the newest) leave them.

The migrations are the source of truth for the database; these definitions are what the code
queries with, and `tests/store/test_migrations.py` checks that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from dse.store.documents import ID_LENGTH, KIND_MAX_LENGTH

ENGINE_VERSION_MAX_LENGTH = 128
ID_COLUMN_LENGTH = 2 * ID_LENGTH  # room to lengthen ids later without a column change
TOKEN_HASH_LENGTH = 64  # hex SHA-256


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL keeps the zone (timestamptz); SQLite has no zone, so the value is stored as naive
    UTC and given back its zone on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

# An integer row id orders scenarios by insertion (newest first) without trusting clock ties; the
# public id is the content hash for the first save of a content, a random id for a later named copy
# of the same content (migration 0003); `content_id` is always the content hash. On SQLite, INTEGER
# PRIMARY KEY is the rowid itself.
ROW_ID_TYPE: Any = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

scenarios = sa.Table(
    "scenarios",
    metadata,
    sa.Column("row_id", ROW_ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(ID_COLUMN_LENGTH), nullable=False),
    sa.Column("kind", sa.String(KIND_MAX_LENGTH), nullable=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("schema_version", sa.Integer(), nullable=False),
    # Canonical JSON of {schema_version, kind, inputs}: the hashed content, never updated.
    sa.Column("content_json", sa.Text(), nullable=False),
    # No foreign key: a parent may be deleted and its children keep pointing at its id.
    sa.Column("parent_id", sa.String(ID_COLUMN_LENGTH), nullable=True),
    sa.Column("owner_token_sha256", sa.String(TOKEN_HASH_LENGTH), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("revision", sa.Integer(), nullable=False),
    # The hash of content_json (migration 0003; written on every save, backfilled as `id` for older
    # rows; nullable only because SQLite cannot add a NOT NULL column without a default).
    sa.Column("content_id", sa.String(ID_COLUMN_LENGTH), nullable=True),
    sa.UniqueConstraint("id", name="uq_scenarios_id"),
    sa.Index("ix_scenarios_kind_row_id", "kind", "row_id"),
    sa.Index("ix_scenarios_parent_id", "parent_id"),
    sa.Index("ix_scenarios_content_id", "content_id"),
)

scenario_results = sa.Table(
    "scenario_results",
    metadata,
    sa.Column("scenario_id", sa.String(ID_COLUMN_LENGTH), nullable=False),
    sa.Column("engine_version", sa.String(ENGINE_VERSION_MAX_LENGTH), nullable=False),
    sa.Column("result_json", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("scenario_id", "engine_version", name="pk_scenario_results"),
    sa.ForeignKeyConstraint(
        ["scenario_id"], ["scenarios.id"], ondelete="CASCADE", name="fk_scenario_results_scenario_id"
    ),
)

# Sweep jobs (migration 0002): a large grid evaluated in shards; the id is the hash of the job's
# content, the summary is the merge of the shards done so far (dse.services.jobs.summary).
sweep_jobs = sa.Table(
    "sweep_jobs",
    metadata,
    sa.Column("id", sa.String(ID_COLUMN_LENGTH), primary_key=True),
    sa.Column("kind", sa.String(KIND_MAX_LENGTH), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("spec_json", sa.Text(), nullable=False),
    sa.Column("summary_json", sa.Text(), nullable=True),
    sa.Column("done_shards_json", sa.Text(), nullable=False),
    sa.Column("shards_total", sa.Integer(), nullable=False),
    sa.Column("points_total", sa.BigInteger(), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    # No foreign key: the scenario may be deleted; the job keeps the id it was attached to.
    sa.Column("scenario_id", sa.String(ID_COLUMN_LENGTH), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
