"""Time-partitioned tables: how the models declare them, per dialect.

On PostgreSQL the call log (``cdrs``), the routing decisions (``call_attempts``) and the audit
trail (``audit_events``) are range-partitioned by time (``PARTITION BY RANGE``). PostgreSQL
requires the partition key in every primary key and unique constraint, so there:

* the primary key is ``(id, <time>)``; ``id`` still comes from one sequence and stays unique;
* the idempotency keys become ``(system_name, uniqueid, <time>)``. A repeated CDR or attempt
  carries the same start time (Asterisk's channel start, the decision's instant), so the
  database still refuses the duplicate; the appender's own look-up under the chain lock
  (``binding_store.call_log``) remains the authority for records whose time differs.

SQLite keeps one table with the constraints it always had (``id`` the rowid, globally unique
``(system_name, uniqueid)`` and ``chain_seq``). Constraints of one dialect only are declared with
:func:`only_on` (SQLAlchemy's ``ddl_if`` plus a marker the schema comparison reads), the
PostgreSQL primary key and the DEFAULT partition (the catch-all for rows no range partition
covers yet, so an insert never fails for lack of a partition) are DDL events. Range partitions
are created by ``binding_store.partitions`` and by the migration, never by ``create_all``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Index, Table, event, text
from sqlalchemy.schema import Constraint

from binding_store.issue_sql import POOL_ORDER_INDEX

ONLY_ON = "only_on"
DEFAULT_SUFFIX = "_default"

# table -> its partition key column
PARTITION_KEYS: dict[str, str] = {
    "cdrs": "start_utc",
    "call_attempts": "at",
    "audit_events": "at",
}
# Storage parameters of new partitions. The shop query reads ``cdrs`` by index-only scans,
# which read the heap for every row on a page not yet marked all-visible by VACUUM: vacuum the
# growing partition after each 1 % of inserts (autovacuum's default waits for 20 %), so only
# the newest minutes to hours of calls cost a heap read.
PARTITION_STORAGE: dict[str, str] = {
    "cdrs": "autovacuum_vacuum_insert_scale_factor = 0.01",
}

Item = TypeVar("Item", Index, Constraint)


def only_on(dialect: str, item: Item) -> Item:
    """``item`` exists on ``dialect`` only: in DDL (``ddl_if``) and in the schema comparison
    (``alembic check`` skips it elsewhere, see :func:`schema_filters`)."""
    item.info[ONLY_ON] = dialect
    item.ddl_if(dialect=dialect)
    return item


def range_partitioned(column: str) -> dict[str, Any]:
    """The table keyword arguments of a table partitioned by ``column`` on PostgreSQL."""
    return {"postgresql_partition_by": f"RANGE ({column})"}


def default_partition(table: str) -> str:
    return f"{table}{DEFAULT_SUFFIX}"


def declare_partitioned(table: Table, column: str) -> None:
    """PostgreSQL only, after ``CREATE TABLE``: the primary key ``(id, column)`` and the
    DEFAULT partition (``create_all`` builds the same schema as the migrations)."""
    name = table.name

    def after_create(_target: Table, connection: Connection, **_kw: Any) -> None:
        if connection.dialect.name != "postgresql":
            return
        connection.execute(text(
            f"ALTER TABLE {name} ADD CONSTRAINT pk_{name} PRIMARY KEY (id, {column})"))
        connection.execute(text(
            f"CREATE TABLE {default_partition(name)} PARTITION OF {name} DEFAULT"))

    event.listen(table, "after_create", after_create)


def schema_filters(dialect: str, connection: Connection | None
                   ) -> tuple[Callable[..., bool], Callable[..., bool]]:
    """Alembic's ``include_name`` and ``include_object`` for a database of ``dialect``:
    partitions are not model tables (read from ``connection`` when first needed: only a
    comparison needs them, and an upgrade must not find a transaction begun behind its back),
    and an object declared for another dialect is not expected here."""
    skip: set[str] | None = None

    def include_name(name: str | None, type_: str, _parent: dict[str, Any]) -> bool:
        nonlocal skip
        if type_ != "table":
            return True
        if skip is None:
            skip = set(table_partitions(connection)) if connection is not None else set()
        return name not in skip

    def include_object(obj: Any, _name: str | None, _type: str, reflected: bool,
                       _compare_to: Any) -> bool:
        if reflected:
            # an index the issue function brings with it (see binding_store.issue_sql)
            return _name != POOL_ORDER_INDEX
        wanted = getattr(obj, "info", {}).get(ONLY_ON)
        return wanted is None or wanted == dialect

    return include_name, include_object


def table_partitions(connection: Connection) -> list[str]:
    """Names of every partition in the database (none on SQLite)."""
    if connection.dialect.name != "postgresql":
        return []
    return list(connection.execute(text(
        "SELECT relname FROM pg_class WHERE relispartition")).scalars())
