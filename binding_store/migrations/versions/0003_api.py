"""HTTP API: bearer tokens (hashed) and reveal counters (daily quota, velocity).

Revision ID: 0003_api
Revises: 0002_call_log
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_api"
down_revision = "0002_call_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("shop_id", sa.String(64), nullable=True),
        sa.Column("account_id", sa.String(64), nullable=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
    )
    op.create_index("ix_api_tokens_shop_id", "api_tokens", ["shop_id"])
    op.create_table(
        "reveal_counters",
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("bucket", sa.String(32), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "subject", "bucket", name="pk_reveal_counters"),
    )
    op.create_index("ix_reveal_counters_expires_at", "reveal_counters", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_reveal_counters_expires_at", table_name="reveal_counters")
    op.drop_table("reveal_counters")
    op.drop_index("ix_api_tokens_shop_id", table_name="api_tokens")
    op.drop_table("api_tokens")
