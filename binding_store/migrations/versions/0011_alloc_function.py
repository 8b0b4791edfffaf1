"""Allocation at the database: ``privnum_issue``, one statement issuing a batch of bindings.

Revision ID: 0011_alloc_function
Revises: 0010_idempotency_keys

PostgreSQL only (SQLite keeps the ORM path; nothing to do there). The function body is in
``binding_store.issue_sql`` so the migration and the tests install the same text.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from binding_store.issue_sql import CREATE_FUNCTION, DROP_FUNCTION

revision: str = "0011_alloc_function"
down_revision: str | Sequence[str] | None = "0010_idempotency_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(CREATE_FUNCTION)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(DROP_FUNCTION)
