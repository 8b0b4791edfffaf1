"""Extension mode: pool numbers by mode, (X, extension) slots, the binding's extension.

Revision ID: 0013_extension_mode
Revises: 0012_call_rules
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_extension_mode"
down_revision: str | Sequence[str] | None = "0012_call_rules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("state = 'active'")
ACTIVE_EXTENSION = sa.text("state = 'active' AND extension <> ''")
WITH_EXTENSION = sa.text("extension <> ''")
FREE = sa.text("held_by IS NULL")


def _partial(name: str, columns: list[str], where: sa.TextClause, unique: bool) -> None:
    op.create_index(name, "bindings", columns, unique=unique, sqlite_where=where,
                    postgresql_where=where)


def upgrade() -> None:
    op.add_column("pool_numbers", sa.Column("mode", sa.String(16), nullable=False,
                                            server_default="axb"))
    op.add_column("pool_numbers", sa.Column("extension_length", sa.Integer(), nullable=True))
    op.add_column("bindings", sa.Column("extension", sa.String(4), nullable=False,
                                        server_default=""))
    # (A, X) and (B, X) stay unique for AXB bindings (extension ''); an extension X holds
    # many bindings of one A or one B, told apart by the extension.
    op.drop_index("uq_active_ax", table_name="bindings")
    op.drop_index("uq_active_bx", table_name="bindings")
    _partial("uq_active_ax", ["caller_a", "virtual_x", "extension"], ACTIVE, True)
    _partial("uq_active_bx", ["buyer_bidx", "virtual_x", "extension"], ACTIVE, True)
    _partial("uq_active_x_extension", ["virtual_x", "extension"], ACTIVE_EXTENSION, True)
    _partial("ix_bindings_axe_released", ["caller_a", "virtual_x", "extension", "released_at"],
             WITH_EXTENSION, False)
    op.create_table(
        "pool_extensions",
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("extension", sa.String(4), nullable=False),
        sa.Column("held_by", sa.String(32), nullable=True),
        sa.Column("last_released_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["number"], ["pool_numbers.number"], ondelete="CASCADE",
                                name="fk_pool_extensions_number_pool_numbers"),
        sa.PrimaryKeyConstraint("number", "extension", name="pk_pool_extensions"),
    )
    op.create_index("ix_pool_extensions_free", "pool_extensions",
                    ["last_released_at", "number", "extension"], sqlite_where=FREE,
                    postgresql_where=FREE)
    op.create_index("ix_pool_extensions_held_by", "pool_extensions", ["held_by"])


def downgrade() -> None:
    op.drop_index("ix_pool_extensions_held_by", table_name="pool_extensions")
    op.drop_index("ix_pool_extensions_free", table_name="pool_extensions")
    op.drop_table("pool_extensions")
    for name in ("ix_bindings_axe_released", "uq_active_x_extension", "uq_active_bx",
                 "uq_active_ax"):
        op.drop_index(name, table_name="bindings")
    _partial("uq_active_ax", ["caller_a", "virtual_x"], ACTIVE, True)
    _partial("uq_active_bx", ["buyer_bidx", "virtual_x"], ACTIVE, True)
    op.drop_column("bindings", "extension")
    op.drop_column("pool_numbers", "extension_length")
    op.drop_column("pool_numbers", "mode")
