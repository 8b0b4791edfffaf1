"""``privnum_issue`` leaves to the session whether it is planned per call or once per
session, and probes candidate numbers in order until the first free one.

Planning its statements for every batch cost more than running them (about 1.3 ms of the
2.6 ms each binding took at the database). The function no longer sets ``plan_cache_mode``:
privnum's issue writer sets it on its sessions (``binding_store.issue_sql.PLAN_CHOICE``:
generic plans while the tables' statistics are current, per-call plans otherwise), again
every ``REPLAN_SECONDS`` with its plans discarded, so both follow the tables' growth.
The candidate window is no longer probed whole and sorted afterwards: it streams in pool
order through the (A, X), (B, X) and cool-down probes, the preferred region's numbers in a
pass of their own. Results are unchanged.

Revision ID: 0018_issue_plan_once
Revises: 0017_issue_pool_order
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from binding_store.issue_sql import CREATE_FUNCTION, PLAN_MODE_CUSTOM, SET_PLAN_MODE

revision: str = "0018_issue_plan_once"
down_revision: str | Sequence[str] | None = "0017_issue_pool_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(CREATE_FUNCTION)


def downgrade() -> None:
    # The function keeps its new text (same results), planned per call as at 0017.
    if op.get_context().dialect.name == "postgresql":
        op.execute(SET_PLAN_MODE.format(mode=PLAN_MODE_CUSTOM))
