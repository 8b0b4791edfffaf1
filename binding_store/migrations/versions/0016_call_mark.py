"""Call-rule marks in the call log: how a call rule let a call through ("grace", "fallback"),
on call records as on call attempts.

The column is nullable without a default: adding it rewrites no row (on PostgreSQL a catalog
change only, inherited by every partition), and rows written before it keep their hash (the
chain covers the mark only when set). The shop query's covering index ``ix_cdrs_shop_start``
lists it among its INCLUDE columns, so the query stays an index-only scan; the index is
rebuilt (on a partitioned table: on every partition).

Revision ID: 0016_call_mark
Revises: 0015_recordings
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_call_mark"
down_revision: str | Sequence[str] | None = "0015_recordings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LISTED = ("system_name, uniqueid, linkedid, order_id, binding_id, buyer_id, caller_a, "
          "caller_masked, virtual_x, buyer_masked, answer_utc, end_utc, duration, billsec, "
          "disposition, hangup_cause, direction, outcome, reason, source, extension")


def _shop_index(include: str) -> None:
    """Rebuild the shop query's index with ``include`` (PostgreSQL: SQLite has no INCLUDE)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_cdrs_shop_start")
    op.execute(f"CREATE INDEX ix_cdrs_shop_start ON cdrs (shop_id, start_utc, id) "
               f"INCLUDE ({include})")


def upgrade() -> None:
    op.add_column("cdrs", sa.Column("mark", sa.String(16), nullable=True))
    _shop_index(f"{LISTED}, mark")


def downgrade() -> None:
    _shop_index(LISTED)
    op.drop_column("cdrs", "mark")
