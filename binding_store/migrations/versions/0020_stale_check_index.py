"""An index for issuing's stale check: A's active bindings by expiry.

Before a binding is issued, the stale check asks whether A, B or the order has an active
binding past its expiry. For A that read every active binding of A (through ``uq_active_ax``),
so issuing for a shop line with thousands of active bindings read thousands of rows each
time. The partial index ``ix_bindings_a_active_expiry`` (caller_a, expires_at) WHERE
state = 'active' answers it from the index: only A's bindings past their expiry are read.
Building it takes a write lock on ``bindings`` for the build's duration (seconds per
million rows); an index of that name built beforehand (``CREATE INDEX CONCURRENTLY``) is kept.

Revision ID: 0020_stale_check_index
Revises: 0019_issue_fetch_one
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_stale_check_index"
down_revision: str | Sequence[str] | None = "0019_issue_fetch_one"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_bindings_a_active_expiry"
ACTIVE = sa.text("state = 'active'")


def upgrade() -> None:
    op.create_index(INDEX, "bindings", ["caller_a", "expires_at"], unique=False,
                    if_not_exists=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="bindings")
