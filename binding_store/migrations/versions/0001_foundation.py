"""Foundation: shops, accounts, caller numbers, pool, bindings, audit events, call attempts.

Every table of binding_store/models.py. The partial unique indexes (active (A, X), active
(B-index, X), active (shop, order), one main account per shop) exist on SQLite and PostgreSQL.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-28 12:53:35.250292
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_foundation"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_shop_id"), ["shop_id"], unique=False)

    op.create_table(
        "call_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("system_name", sa.String(length=64), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("caller_masked", sa.String(length=20), nullable=False),
        sa.Column("caller_a", sa.String(length=20), nullable=False),
        sa.Column("virtual_x", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=True),
        sa.Column("binding_id", sa.String(length=32), nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_attempts")),
        sa.UniqueConstraint("system_name", "uniqueid", name=op.f("uq_call_attempts_system_name")),
    )
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_attempts_linkedid", ["linkedid"], unique=False)
        batch_op.create_index("ix_attempts_shop_at", ["shop_id", "at"], unique=False)

    op.create_table(
        "pool_numbers",
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("last_released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_pool_numbers")),
    )
    with op.batch_alter_table("pool_numbers", schema=None) as batch_op:
        batch_op.create_index("ix_pool_pick", ["state", "region", "last_released_at"], unique=False)

    op.create_table(
        "shops",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("service_state", sa.String(length=16), nullable=False),
        sa.Column("agreement_version", sa.String(length=32), nullable=True),
        sa.Column("accepted_by", sa.String(length=64), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shops")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("phone_reviewed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_accounts_shop_id_shops")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_shop_id"), ["shop_id"], unique=False)
        batch_op.create_index(
            "uq_accounts_main",
            ["shop_id"],
            unique=True,
            sqlite_where=sa.text("role = 'main'"),
            postgresql_where=sa.text("role = 'main'"),
        )

    op.create_table(
        "bindings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("buyer_id", sa.String(length=64), nullable=False),
        sa.Column("caller_a", sa.String(length=20), nullable=False),
        sa.Column("virtual_x", sa.String(length=20), nullable=False),
        sa.Column("buyer_cipher", sa.LargeBinary(), nullable=False),
        sa.Column("buyer_bidx", sa.String(length=64), nullable=False),
        sa.Column("buyer_masked", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_bindings_shop_id_shops")),
        sa.ForeignKeyConstraint(
            ["virtual_x"], ["pool_numbers.number"], name=op.f("fk_bindings_virtual_x_pool_numbers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bindings")),
    )
    with op.batch_alter_table("bindings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bindings_ax_released", ["caller_a", "virtual_x", "released_at"], unique=False
        )
        batch_op.create_index("ix_bindings_bx", ["buyer_bidx", "virtual_x"], unique=False)
        batch_op.create_index("ix_bindings_expiry", ["state", "expires_at"], unique=False)
        batch_op.create_index(
            "uq_active_ax",
            ["caller_a", "virtual_x"],
            unique=True,
            sqlite_where=sa.text("state = 'active'"),
            postgresql_where=sa.text("state = 'active'"),
        )
        batch_op.create_index(
            "uq_active_bx",
            ["buyer_bidx", "virtual_x"],
            unique=True,
            sqlite_where=sa.text("state = 'active'"),
            postgresql_where=sa.text("state = 'active'"),
        )
        batch_op.create_index(
            "uq_active_order",
            ["shop_id", "order_id"],
            unique=True,
            sqlite_where=sa.text("state = 'active'"),
            postgresql_where=sa.text("state = 'active'"),
        )

    op.create_table(
        "caller_numbers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("shop_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("is_main", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_caller_numbers_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_caller_numbers_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caller_numbers")),
        sa.UniqueConstraint("shop_id", "number", name=op.f("uq_caller_numbers_shop_id")),
    )
    with op.batch_alter_table("caller_numbers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_caller_numbers_number"), ["number"], unique=False)
        batch_op.create_index(batch_op.f("ix_caller_numbers_shop_id"), ["shop_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("caller_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caller_numbers_shop_id"))
        batch_op.drop_index(batch_op.f("ix_caller_numbers_number"))

    op.drop_table("caller_numbers")
    with op.batch_alter_table("bindings", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_active_order",
            sqlite_where=sa.text("state = 'active'"),
            postgresql_where=sa.text("state = 'active'"),
        )
        batch_op.drop_index(
            "uq_active_bx",
            sqlite_where=sa.text("state = 'active'"),
            postgresql_where=sa.text("state = 'active'"),
        )
        batch_op.drop_index(
            "uq_active_ax",
            sqlite_where=sa.text("state = 'active'"),
            postgresql_where=sa.text("state = 'active'"),
        )
        batch_op.drop_index("ix_bindings_expiry")
        batch_op.drop_index("ix_bindings_bx")
        batch_op.drop_index("ix_bindings_ax_released")

    op.drop_table("bindings")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_accounts_main",
            sqlite_where=sa.text("role = 'main'"),
            postgresql_where=sa.text("role = 'main'"),
        )
        batch_op.drop_index(batch_op.f("ix_accounts_shop_id"))

    op.drop_table("accounts")
    op.drop_table("shops")
    with op.batch_alter_table("pool_numbers", schema=None) as batch_op:
        batch_op.drop_index("ix_pool_pick")

    op.drop_table("pool_numbers")
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_shop_at")
        batch_op.drop_index("ix_attempts_linkedid")

    op.drop_table("call_attempts")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_shop_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))

    op.drop_table("audit_events")
