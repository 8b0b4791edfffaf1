"""``privnum_issue`` reads a busy caller line's numbers once instead of probing each.

Before, each candidate X in the pool's order was checked for an active (A, X) pair with an
index probe of its own. A line holding k numbers holds the first k of that order (every line
takes numbers in the same order), so its next binding probed k numbers and the candidate
windows grew to cover them: issuing was O(k) probes per binding, quadratic over a bulk file
for one line. The first window of candidates is still probed per number (the usual line
holds few numbers, and a hashed read of them cost more than the probes: +17 % PostgreSQL CPU
per binding in the allocation bench); the next windows leave A's active numbers out with one
hashed read of A's bindings. Same choice of X (the first eligible number in the pool's
order). Measured with ``python -m bench bind_file`` (5 000 orders, one line): 46.5 s to
7.7 s.

Revision ID: 0022_issue_reads_line_once
Revises: 0021_issue_batch_audit
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from binding_store.issue_sql import CREATE_FUNCTION

revision: str = "0022_issue_reads_line_once"
down_revision: str | Sequence[str] | None = "0021_issue_batch_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(CREATE_FUNCTION)


def downgrade() -> None:
    # The function keeps its new text: the same choices (0011's downgrade drops it).
    pass
