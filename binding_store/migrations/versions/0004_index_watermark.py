"""Index watermark: the counter that tells a Redis index older than SQL from a current one.

Revision ID: 0004_index_watermark
Revises: 0003_api
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_index_watermark"
down_revision: str | Sequence[str] | None = "0003_api"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "index_watermark",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_watermark")),
    )


def downgrade() -> None:
    op.drop_table("index_watermark")
