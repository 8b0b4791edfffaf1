"""Extension mode in the call log: the extension entered, on call attempts and call records.

Both columns are nullable without a default: adding them rewrites no row (on PostgreSQL a
catalog change only, inherited by every partition). The shop query's covering index
``ix_cdrs_shop_start`` lists the new column among its INCLUDE columns, so the query stays an
index-only scan; the index is rebuilt (on a partitioned table: on every partition).

Revision ID: 0014_call_extension
Revises: 0013_extension_mode
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_call_extension"
down_revision: str | Sequence[str] | None = "0013_extension_mode"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LISTED = ("system_name, uniqueid, linkedid, order_id, binding_id, buyer_id, caller_a, "
          "caller_masked, virtual_x, buyer_masked, answer_utc, end_utc, duration, billsec, "
          "disposition, hangup_cause, direction, outcome, reason, source")


def _shop_index(include: str) -> None:
    """Rebuild the shop query's index with ``include`` (PostgreSQL: SQLite has no INCLUDE)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_cdrs_shop_start")
    op.execute(f"CREATE INDEX ix_cdrs_shop_start ON cdrs (shop_id, start_utc, id) "
               f"INCLUDE ({include})")


def upgrade() -> None:
    op.add_column("call_attempts", sa.Column("extension", sa.String(4), nullable=True))
    op.add_column("cdrs", sa.Column("extension", sa.String(4), nullable=True))
    _shop_index(f"{LISTED}, extension")


def downgrade() -> None:
    _shop_index(LISTED)
    op.drop_column("cdrs", "extension")
    op.drop_column("call_attempts", "extension")
