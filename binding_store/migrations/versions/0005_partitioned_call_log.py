"""Call log partitioned by time on PostgreSQL: ``cdrs`` (by ``start_utc``), ``call_attempts``
and ``audit_events`` (by ``at``); rows kept. SQLite keeps one table: nothing to do there.

Per table, in the migration's one transaction: the old table is renamed and stripped of its
indexes, the partitioned table is created with the same columns (and the same id sequence),
a DEFAULT partition plus one partition per week (Monday 00:00 UTC) from the oldest row's week
to four weeks ahead are created, the rows are copied, then keys and indexes are built on the
loaded partitions and the old table is dropped. The hash chain's columns are copied verbatim,
so ``privnum cdr verify`` holds across the migration. The tables are locked for the copy: plan
it in a quiet window (``docs/scaling.md`` gives the time measured at 10 M rows).

PostgreSQL requires the partition key in every unique constraint: the primary key becomes
``(id, <time>)`` and the idempotency key ``(system_name, uniqueid, <time>)``; ``cdrs.chain_seq``
is indexed instead of unique (see ``binding_store/partitioned.py``).

Revision ID: 0005_partitioned_call_log
Revises: 0004_index_watermark
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

revision: str = "0005_partitioned_call_log"
down_revision: str | Sequence[str] | None = "0004_index_watermark"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WEEKS_AHEAD = 4
LISTED = ("system_name, uniqueid, linkedid, order_id, binding_id, buyer_id, caller_a, "
          "caller_masked, virtual_x, buyer_masked, answer_utc, end_utc, duration, billsec, "
          "disposition, hangup_cause, direction, outcome, reason, source")


class Layout(NamedTuple):
    table: str
    key: str
    partitioned: tuple[str, ...]  # constraints and indexes of the partitioned table
    flat: tuple[str, ...]  # the same for the one-table layout (downgrade)


LAYOUTS = (
    Layout("cdrs", "start_utc", (
        "ALTER TABLE cdrs ADD CONSTRAINT pk_cdrs PRIMARY KEY (id, start_utc)",
        "ALTER TABLE cdrs ADD CONSTRAINT uq_cdrs_system_uniqueid_start "
        "UNIQUE (system_name, uniqueid, start_utc)",
        "CREATE INDEX ix_cdrs_chain_seq ON cdrs (chain_seq)",
        f"CREATE INDEX ix_cdrs_shop_start ON cdrs (shop_id, start_utc, id) INCLUDE ({LISTED})",
        "CREATE INDEX ix_cdrs_shop_order ON cdrs (shop_id, order_id)",
        "CREATE INDEX ix_cdrs_start ON cdrs (start_utc)",
        "CREATE INDEX ix_cdrs_linkedid ON cdrs (linkedid)",
    ), (
        "ALTER TABLE cdrs ADD CONSTRAINT pk_cdrs PRIMARY KEY (id)",
        "ALTER TABLE cdrs ADD CONSTRAINT uq_cdrs_system_uniqueid UNIQUE (system_name, uniqueid)",
        "ALTER TABLE cdrs ADD CONSTRAINT uq_cdrs_chain_seq UNIQUE (chain_seq)",
        "CREATE INDEX ix_cdrs_shop_start ON cdrs (shop_id, start_utc, id)",
        "CREATE INDEX ix_cdrs_shop_order ON cdrs (shop_id, order_id)",
        "CREATE INDEX ix_cdrs_start ON cdrs (start_utc)",
        "CREATE INDEX ix_cdrs_linkedid ON cdrs (linkedid)",
    )),
    Layout("call_attempts", "at", (
        "ALTER TABLE call_attempts ADD CONSTRAINT pk_call_attempts PRIMARY KEY (id, at)",
        "ALTER TABLE call_attempts ADD CONSTRAINT uq_call_attempts_system_uniqueid_at "
        "UNIQUE (system_name, uniqueid, at)",
        "CREATE INDEX ix_attempts_shop_at ON call_attempts (shop_id, at)",
        "CREATE INDEX ix_attempts_linkedid ON call_attempts (linkedid)",
    ), (
        "ALTER TABLE call_attempts ADD CONSTRAINT pk_call_attempts PRIMARY KEY (id)",
        "ALTER TABLE call_attempts ADD CONSTRAINT uq_call_attempts_system_name "
        "UNIQUE (system_name, uniqueid)",
        "CREATE INDEX ix_attempts_shop_at ON call_attempts (shop_id, at)",
        "CREATE INDEX ix_attempts_linkedid ON call_attempts (linkedid)",
    )),
    Layout("audit_events", "at", (
        "ALTER TABLE audit_events ADD CONSTRAINT pk_audit_events PRIMARY KEY (id, at)",
        "CREATE INDEX ix_audit_events_at ON audit_events (at)",
        "CREATE INDEX ix_audit_events_shop_id ON audit_events (shop_id)",
    ), (
        "ALTER TABLE audit_events ADD CONSTRAINT pk_audit_events PRIMARY KEY (id)",
        "CREATE INDEX ix_audit_events_at ON audit_events (at)",
        "CREATE INDEX ix_audit_events_shop_id ON audit_events (shop_id)",
    )),
)


def _week_start(moment: datetime) -> datetime:
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _rebuild(conn: sa.Connection, layout: Layout, *, partitioned: bool) -> None:
    """Move ``layout.table`` into a new table of the other layout, rows and sequence kept."""
    table, key = layout.table, layout.key
    old = f"{table}_before_0005"
    sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"),
                            {"t": table}).scalar_one()
    conn.execute(sa.text(f"ALTER TABLE {table} RENAME TO {old}"))
    # Index and constraint names are per schema: the old ones go before the new ones come.
    for name in conn.execute(sa.text(
            "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass)"),
            {"t": old}).scalars().all():
        conn.execute(sa.text(f'ALTER TABLE {old} DROP CONSTRAINT "{name}"'))
    for name in conn.execute(sa.text(
            "SELECT indexname FROM pg_indexes WHERE tablename = :t AND schemaname = "
            "current_schema()"), {"t": old}).scalars().all():
        conn.execute(sa.text(f'DROP INDEX "{name}"'))
    how = f" PARTITION BY RANGE ({key})" if partitioned else ""
    conn.execute(sa.text(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS){how}"))
    if partitioned:
        _create_partitions(conn, table, key, old)
    conn.execute(sa.text(f"INSERT INTO {table} SELECT * FROM {old}"))
    conn.execute(sa.text("SET LOCAL maintenance_work_mem = '256MB'"))
    for ddl in layout.partitioned if partitioned else layout.flat:
        conn.execute(sa.text(ddl))
    if sequence:
        conn.execute(sa.text(f"ALTER SEQUENCE {sequence} OWNED BY {table}.id"))
    conn.execute(sa.text(f"DROP TABLE {old}"))
    conn.execute(sa.text(f"ANALYZE {table}"))


def _create_partitions(conn: sa.Connection, table: str, key: str, old: str) -> None:
    conn.execute(sa.text(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT"))
    # cdrs is read by index-only scans: vacuum its partitions after each 1 % of inserts
    storage = " WITH (autovacuum_vacuum_insert_scale_factor = 0.01)" if table == "cdrs" else ""
    oldest = conn.execute(sa.text(f"SELECT min({key}) FROM {old}")).scalar()
    now = datetime.now(UTC)
    lo = _week_start(min(oldest, now) if oldest is not None else now)
    end = _week_start(now) + timedelta(weeks=WEEKS_AHEAD + 1)
    while lo < end:
        hi = lo + timedelta(weeks=1)
        conn.execute(sa.text(
            f"CREATE TABLE {table}_p{lo:%Y%m%d} PARTITION OF {table} "
            f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}'){storage}"))
        lo = hi


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return  # SQLite keeps one table per log
    for layout in LAYOUTS:
        _rebuild(conn, layout, partitioned=True)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for layout in LAYOUTS:
        _rebuild(conn, layout, partitioned=False)
