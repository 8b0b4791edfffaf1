"""``privnum_issue`` reads candidates with a simpler query when no region is preferred.

A request without a preferred region (the usual one) no longer goes through the query that
ranks the preferred region's numbers before the others: one ordered window of the pool, the
same three probes per candidate. The X chosen is unchanged (without a preferred region every
number ranked alike); the database spends about 30 us less per binding. Requests with a
preferred region run the query they ran before.

Revision ID: 0019_issue_without_region
Revises: 0018_issue_plan_once
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from binding_store.issue_sql import CREATE_FUNCTION

revision: str = "0019_issue_without_region"
down_revision: str | Sequence[str] | None = "0018_issue_plan_once"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(CREATE_FUNCTION)


def downgrade() -> None:
    # The function stays: its answers are those of 0018's.
    pass
