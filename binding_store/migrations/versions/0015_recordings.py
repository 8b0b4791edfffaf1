"""Recording with notice: a shop's opt-in and retention, and the recordings table.

Revision ID: 0015_recordings
Revises: 0014_call_extension
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_recordings"
down_revision: str | Sequence[str] | None = "0014_call_extension"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("shop_call_rules", sa.Column("record", sa.Boolean(), nullable=True))
    op.add_column("shop_call_rules", sa.Column("record_retention_days", sa.Integer(),
                                               nullable=True))
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(28), nullable=False),
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("binding_id", sa.String(32), nullable=False),
        sa.Column("system_name", sa.String(64), nullable=False),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("linkedid", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("billsec", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purge_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_recordings"),
    )
    op.create_index("ix_recordings_call", "recordings", ["system_name", "uniqueid"])
    op.create_index("ix_recordings_state_purge", "recordings", ["state", "purge_after"])


def downgrade() -> None:
    op.drop_index("ix_recordings_state_purge", table_name="recordings")
    op.drop_index("ix_recordings_call", table_name="recordings")
    op.drop_table("recordings")
    op.drop_column("shop_call_rules", "record_retention_days")
    op.drop_column("shop_call_rules", "record")
