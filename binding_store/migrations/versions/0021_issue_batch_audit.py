"""``privnum_issue`` writes a batch's audit rows and ``binding.created`` events together.

Before, each new binding's audit row and outbox event were two ``INSERT`` statements of
their own inside its sub-transaction; a statement per row cost more than the row. The
function now remembers which requests it created and, after the last one, inserts their
audit rows and events with one statement each, in request order. Same rows, same text;
a batch that cannot write them fails as a whole (nothing of it is committed). Measured in
the allocation bench: about 7 % less PostgreSQL CPU per binding.

Revision ID: 0021_issue_batch_audit
Revises: 0020_stale_check_index
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from binding_store.issue_sql import CREATE_FUNCTION

revision: str = "0021_issue_batch_audit"
down_revision: str | Sequence[str] | None = "0020_stale_check_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(CREATE_FUNCTION)


def downgrade() -> None:
    # The function keeps its new text: the same rows (0011's downgrade drops it).
    pass
