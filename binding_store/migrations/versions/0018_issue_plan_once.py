"""``privnum_issue`` leaves to the session whether it is planned per call or once per
session.

Planning its statements for every batch cost more than running them (about 1.3 ms of the
2.6 ms each binding took at the database). The function no longer sets ``plan_cache_mode``:
privnum's issue writer sets it on its sessions (``binding_store.issue_sql.PLAN_CHOICE``:
generic plans while the tables' statistics are current, per-call plans otherwise), again
every ``REPLAN_SECONDS`` with its plans discarded, so both follow the tables' growth.
Results are unchanged.

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
    # planned per call, as at 0017
    if op.get_context().dialect.name == "postgresql":
        op.execute(SET_PLAN_MODE.format(mode=PLAN_MODE_CUSTOM))
