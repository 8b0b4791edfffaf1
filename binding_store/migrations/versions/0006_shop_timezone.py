"""A shop's time zone: where people read its call log (CLI table, the CSV export's option).

Revision ID: 0006_shop_timezone
Revises: 0005_partitioned_call_log
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_shop_timezone"
down_revision: str | Sequence[str] | None = "0005_partitioned_call_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: the default zone (the risk policy's, Asia/Shanghai unless configured).
    op.add_column("shops", sa.Column("timezone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("shops", "timezone")
