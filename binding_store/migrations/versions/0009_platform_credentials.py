"""Platform credentials: the admin token becomes the platform credential, auditor grants,
orders the platform registers, and audit actors long enough for "who acted for whom".

Revision ID: 0009_platform_credentials
Revises: 0008_webhooks
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_platform_credentials"
down_revision: str | Sequence[str] | None = "0008_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE api_tokens SET kind = 'platform' WHERE kind = 'admin'")
    op.create_table(
        "api_token_shops",
        sa.Column("token_id", sa.String(24), nullable=False),
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("token_id", "shop_id", name="pk_api_token_shops"),
    )
    op.create_table(
        "orders",
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("buyer_cipher", sa.LargeBinary(), nullable=False),
        sa.Column("buyer_masked", sa.String(32), nullable=False),
        sa.Column("buyer_id", sa.String(64), nullable=False),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("shop_id", "order_id", name="pk_orders"),
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("actor", existing_type=sa.String(64), type_=sa.String(160),
                           existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("actor", existing_type=sa.String(160), type_=sa.String(64),
                           existing_nullable=False)
    op.drop_table("orders")
    op.drop_table("api_token_shops")
    op.execute("UPDATE api_tokens SET kind = 'admin' WHERE kind = 'platform'")
