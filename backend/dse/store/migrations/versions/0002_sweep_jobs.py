"""Sweep jobs: a large sweep evaluated in shards, with its merged summary so far.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Written out in full (see 0001): a migration is a snapshot.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweep_jobs",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("summary_json", sa.Text(), nullable=True),
        sa.Column("done_shards_json", sa.Text(), nullable=False),
        sa.Column("shards_total", sa.Integer(), nullable=False),
        sa.Column("points_total", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("scenario_id", sa.String(24), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sweep_jobs")
