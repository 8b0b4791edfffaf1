"""Batch inserts on PostgreSQL as one JSON document, expanded into rows by the server.

The whole batch is serialised once (``binding_store.json_text``, in C) and sent as a single
parameter: ``INSERT INTO t (cols) SELECT cols FROM json_to_recordset(:rows) AS r(col type,
...)``. One statement text for every batch size, as an ``unnest`` of one array per column
would give, but without the driver dumping an array element by element in Python (which made
long texts, JSON payloads, dearer than an ``executemany``; ``bench.batch_writes`` compares
the two).

The record's types are unbounded (``text``, ``timestamptz`` ...): a value too long for its
column fails the row as a plain insert would (a cast to ``varchar(n)`` would cut it silently).
A timestamp goes as ISO 8601 with its offset; a naive one is refused before the database
sees it, as ``binding_store.types.UTCDateTime`` refuses it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import String, Table, TextClause, text

from binding_store.json_text import dumps


def recordset_insert(table: Table, columns: Sequence[str], *, on_conflict: str = "",
                     record_types: Mapping[str, str] = MappingProxyType({}),
                     returning: Sequence[str] = ()) -> TextClause:
    """The insert of ``columns``, one parameter ``rows`` (see :func:`as_document`);
    ``on_conflict`` is appended as it is (e.g. ``ON CONFLICT DO NOTHING``), then a
    ``RETURNING`` of the ``returning`` columns (the rows inserted: not those the conflict
    clause skipped). ``record_types`` names a column's type in the record where it is not
    the column's own (``json`` for a text column given as a nested JSON value: ``json`` keeps
    its input text verbatim, so the column gets exactly the text of that value)."""
    record = ", ".join(f'"{name}" {record_types.get(name) or _unbounded(table, name)}'
                       for name in columns)
    names = ", ".join(f'"{name}"' for name in columns)
    returned = (" RETURNING " + ", ".join(f'"{name}"' for name in returning)
                if returning else "")
    return text(f'INSERT INTO "{table.name}" ({names}) SELECT {names} '
                f"FROM json_to_recordset(CAST(:rows AS json)) AS r({record}) {on_conflict}"
                f"{returned}")


def _unbounded(table: Table, name: str) -> str:
    column_type = table.c[name].type
    if isinstance(column_type, String):
        return "text"
    if getattr(column_type, "impl", None) is not None:  # a TypeDecorator (UTCDateTime)
        column_type = column_type.impl  # type: ignore[attr-defined]
    if getattr(column_type, "timezone", False):
        return "timestamptz"
    return str(column_type.compile())


def as_document(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The parameter of :func:`recordset_insert` for ``rows``."""
    return {"rows": dumps(rows, default=_timestamp)}


def column_time(value: datetime) -> str:
    """A timestamp as the document carries it (ISO 8601 with its offset; naive: refused)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.isoformat()


def _timestamp(value: object) -> str:
    if isinstance(value, datetime):
        return column_time(value)
    raise TypeError(f"{type(value).__name__} is not a column value")
