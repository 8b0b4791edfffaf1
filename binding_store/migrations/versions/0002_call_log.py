"""Call log: ``cdrs`` (one row per call attempt, hash-chained) and ``cdr_chain`` (chain head).

Revision ID: 0002_call_log
Revises: 0001_foundation
Create Date: 2026-11-28 13:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_call_log"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cdrs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("chain_seq", sa.BigInteger(), nullable=False),
        sa.Column("system_name", sa.String(length=64), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("binding_id", sa.String(length=32), nullable=False),
        sa.Column("buyer_id", sa.String(length=64), nullable=False),
        sa.Column("caller_a", sa.String(length=20), nullable=False),
        sa.Column("caller_masked", sa.String(length=20), nullable=False),
        sa.Column("virtual_x", sa.String(length=20), nullable=False),
        sa.Column("buyer_masked", sa.String(length=20), nullable=False),
        sa.Column("start_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer_utc", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("billsec", sa.Integer(), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=False),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cdrs")),
        sa.UniqueConstraint("chain_seq", name="uq_cdrs_chain_seq"),
        sa.UniqueConstraint("system_name", "uniqueid", name="uq_cdrs_system_uniqueid"),
    )
    with op.batch_alter_table("cdrs", schema=None) as batch_op:
        batch_op.create_index("ix_cdrs_linkedid", ["linkedid"], unique=False)
        batch_op.create_index("ix_cdrs_shop_order", ["shop_id", "order_id"], unique=False)
        batch_op.create_index("ix_cdrs_shop_start", ["shop_id", "start_utc", "id"],
                              unique=False)
        batch_op.create_index("ix_cdrs_start", ["start_utc"], unique=False)

    op.create_table(
        "cdr_chain",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("anchor_seq", sa.BigInteger(), nullable=False),
        sa.Column("anchor_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cdr_chain")),
    )


def downgrade() -> None:
    op.drop_table("cdr_chain")
    with op.batch_alter_table("cdrs", schema=None) as batch_op:
        batch_op.drop_index("ix_cdrs_start")
        batch_op.drop_index("ix_cdrs_shop_start")
        batch_op.drop_index("ix_cdrs_shop_order")
        batch_op.drop_index("ix_cdrs_linkedid")
    op.drop_table("cdrs")
