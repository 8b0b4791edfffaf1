"""PostgreSQL: a batch of call attempts and their call events, in one statement.

The attempt writer (``binding_store.attempt_writer``) inserts a batch of call attempts; the
same statement builds the ``call.started`` and ``call.rejected`` events of the attempts it
actually inserted (a repeat is skipped, a call repeated within the batch has one pair, the
first), with their bindings' buyer facts, and adds them to the outbox in the batch's order.
Built in the call path's process, the events' dictionaries, ids and JSON were the largest
part of the writer's work there, and they held the event loop for several milliseconds per
batch while the calls waited.

The payloads are :func:`routing.events.decision_events`'s, as ``binding_store.json_text``
encodes them (compact, keys in the same order, the same text): the reason's three fields
are that module's own, encoded here once per reason and handed in as a parameter. A test
(tests/binding_store/test_decision_events_sql.py) compares the two texts for every reason,
action, direction and empty field: a change to one payload that is not made to the other
fails it.

Needs PostgreSQL 13 or later (``gen_random_uuid``). SQLite builds the events in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, text

from binding_store import models as m
from binding_store.json_text import dumps
from binding_store.recordset_insert import as_document, recordset_insert
from binding_store.webhook_models import WebhookEvent
from routing.events import EventType, HangupSide, call_stream, reason_fields
from routing.model import Action
from routing.reasons import Reason

_ATTEMPTS = cast(Table, m.CallAttempt.__table__)
_BINDINGS = cast(Table, m.Binding.__table__).name
_EVENTS = cast(Table, WebhookEvent.__table__).name


def _json(expr: str) -> str:
    """SQL for the JSON text of ``expr`` (a string, a number or NULL), as orjson writes it."""
    return f"COALESCE(CAST(to_json({expr}) AS text), 'null')"


def _literal(value: str) -> str:
    """A SQL string literal in the statement's text (a colon escaped: not a bind)."""
    return "'" + value.replace("'", "''").replace(":", "\\:") + "'"


def _members(parts: Sequence[tuple[str, str]], *, first: bool = False) -> str:
    """``"key":value`` members as one SQL text expression, each after a comma but the very
    first (``first``); each ``value`` is SQL giving JSON text."""
    return " || ".join(
        f"{_literal(('' if first and i == 0 else ',') + dumps(name) + ':')} || {value}"
        for i, (name, value) in enumerate(parts))


# routing.events._decision_call, key by key, on the columns of ``fresh`` (f): "x or None"
# there is NULLIF(x, '') here.
_CALL = (
    ("call_id", _json("f.call_id")),
    ("uniqueid", _json("f.uniqueid")),
    ("system_name", _json("NULLIF(f.system_name, '')")),
    ("shop_id", _json("NULLIF(f.shop_id, '')")),
    ("order_id", _json("NULLIF(f.order_id, '')")),
    ("binding_id", _json("NULLIF(f.binding_id, '')")),
    ("buyer_id", _json("NULLIF(f.facts_buyer_id, '')")),
    ("direction", _json("f.direction")),
    ("virtual_x", _json("NULLIF(f.virtual_x, '')")),
    ("extension", _json("NULLIF(f.extension, '')")),
    ("caller_masked", _json("NULLIF(f.caller_masked, '')")),
    ("a_reached", _json("CASE WHEN f.direction IS NOT NULL THEN NULLIF(f.caller_a, '') END")),
    ("buyer_masked", _json("NULLIF(f.facts_buyer_masked, '')")),
    ("source", _literal(dumps("decision"))), ("observed", "'true'"), ("realtime", "'true'"),
)

# routing.events._iso: ISO 8601 in UTC ending in "Z", a fraction only when there is one.
_AT_JSON = """'"' || to_char(f.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
               || CASE WHEN date_trunc('second', f.at) = f.at THEN ''
                       ELSE to_char(f.at AT TIME ZONE 'UTC', '.US') END || 'Z"'"""



def _payload(before: Sequence[tuple[str, str]], after: Sequence[tuple[str, str]]) -> str:
    """A decision event's payload on the columns of ``calls`` (c): the call's members,
    ``before``, the reason's members, ``after`` (routing.events: ``{**call, ..., **reason,
    ...}``)."""
    return ("'{' || c.call_json || " + _members(before) + " || ',' || c.reason_fields || "
            + _members(after) + " || '}'")


# routing.events.decision_events: call.started, and call.rejected after it for a refusal.
_STARTED = _payload((("action", _json("c.action")), ("started_at", "c.at_json")),
                    (("mark", _json("NULLIF(c.mark, '')")),))
_REJECTED = _payload((("rejected_at", "c.at_json"),),
                     (("hangup_by", _literal(dumps(HangupSide.PRIVNUM.value))),))


# A code the reasons parameter does not list (none today: it lists every Reason) still gets
# its events, with the code alone, as routing.events does for a code it does not know.
_UNLISTED_REASON = (_members((("reason", _json("f.reason")),), first=True) + " || " +
                    _members((("reason_text", "'null'"), ("q850_cause", "'null'"))))


def reasons_document() -> str:
    """The statement's ``reasons`` parameter: each reason code with its payload members
    (``reason``, ``reason_text``, ``q850_cause``) as JSON text, encoded by Python from
    ``routing.events.reason_fields``."""
    return dumps([{"code": r.value, "fields": dumps(reason_fields(r))[1:-1]} for r in Reason])


_REASONS = reasons_document()


def parameters(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """:data:`INSERT_WITH_EVENTS`'s parameters for the attempt rows ``rows``."""
    return {**as_document(rows), "reasons": _REASONS}


_COLUMNS = tuple(column.name for column in _ATTEMPTS.columns if column.name != "id")
_INSERTED = recordset_insert(_ATTEMPTS, _COLUMNS, on_conflict="ON CONFLICT DO NOTHING",
                             returning=("id", *_COLUMNS))

# Parameters: parameters(rows). The attempts' ids follow the document's order (one nextval
# per row, in order), and so do the events.
INSERT_WITH_EVENTS = text(f"""
WITH inserted AS ({_INSERTED.text}),
fresh AS (
    SELECT i.*, b.buyer_masked AS facts_buyer_masked, b.buyer_id AS facts_buyer_id,
           COALESCE(NULLIF(i.linkedid, ''), i.uniqueid) AS call_id,
           row_number() OVER (PARTITION BY i.system_name, i.uniqueid ORDER BY i.id) AS nth
      FROM inserted i
      LEFT JOIN "{_BINDINGS}" b ON b.id = i.binding_id AND i.binding_id <> ''
),
calls AS (
    SELECT f.id, f.at, f.action, f.mark, f.shop_id, f.call_id, max(f.at) OVER () AS batch_at,
           {_members(_CALL, first=True)} AS call_json,
           {_AT_JSON} AS at_json,
           COALESCE(r.fields, {_UNLISTED_REASON}) AS reason_fields
      FROM fresh f
      LEFT JOIN json_to_recordset(CAST(:reasons AS json)) AS r(code text, fields text)
        ON r.code = f.reason
     WHERE f.nth = 1
)
INSERT INTO "{_EVENTS}" (event_id, type, stream, shop_id, occurred_at, created_at, payload,
                         dispatched_at)
SELECT 'evt_' || replace(CAST(gen_random_uuid() AS text), '-', ''), k.type,
       left({_literal(call_stream(''))} || c.call_id, 200), left(c.shop_id, 64), c.at, c.batch_at,
       CASE k.seq WHEN 0 THEN {_STARTED} ELSE {_REJECTED} END, NULL
  FROM calls c
 CROSS JOIN LATERAL (VALUES (0, {_literal(EventType.CALL_STARTED.value)}),
                            (1, {_literal(EventType.CALL_REJECTED.value)})) AS k(seq, type)
 WHERE k.seq = 0 OR c.action = {_literal(Action.REJECT.value)}
 ORDER BY c.id, k.seq""")
