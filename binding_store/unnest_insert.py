"""Batch inserts on PostgreSQL as one array per column, unnested into rows.

An ``executemany`` of N rows costs the driver and the server N statements; a multi-row
``VALUES`` list has a statement text of its own for every batch size, which the driver parses
again each time. ``INSERT ... SELECT * FROM unnest(:a, :b, ...)`` is one statement with one
text for every batch: the cheapest way for the call path's process to write its batches.

For rows of short values only: psycopg dumps a text array element by element in Python,
escaping each; for long texts (JSON payloads) that costs more than the executemany it saves
(measured on the outbox, which therefore keeps its executemany). The call path's writes now
use ``binding_store.recordset_insert`` (one JSON document per batch, cheaper still for short
values); this one stays for the queries' array parameters and as ``bench.batch_writes``' baseline.

The arrays are of unbounded types: a value too long for its column fails as a plain insert
would (an explicit cast to ``varchar(n)`` would cut it silently).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, String, Table, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY, Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert


def unnest_insert(table: Table, columns: Sequence[str]) -> Insert:
    """``INSERT INTO table (columns) SELECT * FROM unnest(...)``; parameters named after the
    columns, each a list (see :func:`as_arrays`)."""
    arrays = [bindparam(name, type_=ARRAY(
        String() if isinstance(table.c[name].type, String) else table.c[name].type))
        for name in columns]
    source: Select[Any] = select(literal_column("*")).select_from(func.unnest(*arrays))
    return pg_insert(table).from_select(list(columns), source)


def as_arrays(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, list[Any]]:
    """The parameters of :func:`unnest_insert` for ``rows`` (each holding every column)."""
    return {name: [row[name] for row in rows] for name in columns}
