"""``privnum_issue`` reads the pool in its candidate order from an index and plans each batch
with its own values.

Before, each binding sorted the whole available pool for its candidate window and probed
(A, X) / (B, X) with one OR (a scan of X's active bindings); with a cached generic plan made
while the tables were small, each probe scanned every active binding. Now: the partial index
``ix_pool_axb_order`` serves the order (a LIMIT stops early), the windows grow (64, 1024,
16384, the whole pool: each a prefix of the same order, so the same X is chosen), each probe
uses its own partial unique index, and the function plans per call. Results are unchanged.

Revision ID: 0017_issue_pool_order
Revises: 0016_call_mark
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from binding_store.issue_sql import (
    CREATE_FUNCTION,
    CREATE_POOL_ORDER_INDEX,
    PLAN_MODE_CUSTOM,
    POOL_ORDER_INDEX,
    SET_PLAN_MODE,
)

revision: str = "0017_issue_pool_order"
down_revision: str | Sequence[str] | None = "0016_call_mark"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(CREATE_POOL_ORDER_INDEX)
    op.execute(CREATE_FUNCTION)
    # planned per call at this revision; 0018 plans once per session
    op.execute(SET_PLAN_MODE.format(mode=PLAN_MODE_CUSTOM))


def downgrade() -> None:
    # The function keeps its new text (same results; 0011's downgrade drops it).
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {POOL_ORDER_INDEX}")
