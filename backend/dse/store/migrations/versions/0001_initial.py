"""Initial schema: scenarios and their cached results.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written out in full rather than imported from dse.store.schema: a migration is a snapshot and must
not change when the code's table definitions move on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scenarios",
        sa.Column("row_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("content_json", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.String(24), nullable=True),
        sa.Column("owner_token_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.UniqueConstraint("id", name="uq_scenarios_id"),
    )
    op.create_index("ix_scenarios_kind_row_id", "scenarios", ["kind", "row_id"])
    op.create_index("ix_scenarios_parent_id", "scenarios", ["parent_id"])
    op.create_table(
        "scenario_results",
        sa.Column("scenario_id", sa.String(24), nullable=False),
        sa.Column("engine_version", sa.String(128), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scenario_id", "engine_version", name="pk_scenario_results"),
        sa.ForeignKeyConstraint(
            ["scenario_id"], ["scenarios.id"], ondelete="CASCADE", name="fk_scenario_results_scenario_id"
        ),
    )


def downgrade() -> None:
    op.drop_table("scenario_results")
    op.drop_index("ix_scenarios_parent_id", table_name="scenarios")
    op.drop_index("ix_scenarios_kind_row_id", table_name="scenarios")
    op.drop_table("scenarios")
