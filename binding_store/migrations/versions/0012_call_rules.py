"""Carrier call rules: a shop's own rules, its caller numbers' reporting status, and the call
log's mark of how a call got through.

Revision ID: 0012_call_rules
Revises: 0011_alloc_function
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_call_rules"
down_revision: str | Sequence[str] | None = "0011_alloc_function"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shop_call_rules",
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(16), nullable=True),
        sa.Column("grace_seconds", sa.Integer(), nullable=True),
        sa.Column("fallback_number", sa.String(20), nullable=True),
        sa.Column("merchant_window", sa.String(11), nullable=True),
        sa.Column("callback_window", sa.String(11), nullable=True),
        sa.Column("require_caller_report", sa.Boolean(), nullable=True),
        sa.Column("caps", sa.String(100), nullable=True),
        sa.Column("warning_seconds", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"],
                                name="fk_shop_call_rules_shop_id_shops"),
        sa.PrimaryKeyConstraint("shop_id", name="pk_shop_call_rules"),
    )
    op.create_table(
        "caller_reports",
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"],
                                name="fk_caller_reports_shop_id_shops"),
        sa.PrimaryKeyConstraint("shop_id", "number", name="pk_caller_reports"),
    )
    op.create_table(
        "call_cap_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("subject_key", sa.String(80), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_call_cap_events"),
    )
    op.create_index("ix_call_cap_events_key_at", "call_cap_events", ["subject_key", "at_us"])
    op.create_table(
        "call_cap_locks",
        sa.Column("subject_key", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("subject_key", name="pk_call_cap_locks"),
    )
    # On partitioned PostgreSQL the column is added to every partition with the parent.
    op.add_column("call_attempts", sa.Column("mark", sa.String(16), nullable=True))


def downgrade() -> None:
    op.drop_column("call_attempts", "mark")
    op.drop_table("call_cap_locks")
    op.drop_index("ix_call_cap_events_key_at", table_name="call_cap_events")
    op.drop_table("call_cap_events")
    op.drop_table("caller_reports")
    op.drop_table("shop_call_rules")
