"""Named copies: a scenario's id no longer has to be its content hash; `content_id` keeps the hash.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Saving inputs someone else already saved gives the second saver their own scenario (own id, name
and owner token) that references the same content hash. Every existing row was saved under its
content hash, so the backfill is `content_id = id`: nothing is rewritten, every link keeps working.

The column is nullable only because SQLite adds a NOT NULL column solely with a default, and
rebuilding the table (Alembic's batch mode) would drop `scenarios` under the results' ON DELETE
CASCADE; the store writes it on every save and this backfill fills every older row.

Written out in full (see 0001): a migration is a snapshot.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scenarios", sa.Column("content_id", sa.String(24), nullable=True))
    op.execute("UPDATE scenarios SET content_id = id")
    op.create_index("ix_scenarios_content_id", "scenarios", ["content_id"])


def downgrade() -> None:
    op.drop_index("ix_scenarios_content_id", table_name="scenarios")
    op.drop_column("scenarios", "content_id")
