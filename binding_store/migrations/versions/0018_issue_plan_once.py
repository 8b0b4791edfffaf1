"""``privnum_issue`` is planned once per session instead of once per call.

Planning its statements for every batch cost more than running them (about 1.3 ms of the
2.6 ms each binding took at the database). The function now keeps generic plans
(``plan_cache_mode = force_generic_plan``); privnum's issue writer discards its sessions'
plans every ``binding_store.issue_sql.REPLAN_SECONDS`` so that they follow the tables' growth.
Results are unchanged.

Revision ID: 0018_issue_plan_once
Revises: 0017_issue_pool_order
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from binding_store.issue_sql import PLAN_MODE_CUSTOM, PLAN_MODE_GENERIC, SET_PLAN_MODE

revision: str = "0018_issue_plan_once"
down_revision: str | Sequence[str] | None = "0017_issue_pool_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(SET_PLAN_MODE.format(mode=PLAN_MODE_GENERIC))


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(SET_PLAN_MODE.format(mode=PLAN_MODE_CUSTOM))
