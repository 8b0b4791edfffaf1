"""The call path's batch writes on PostgreSQL: client CPU per row, previous insert against new.

    python -m bench batch_writes [--rounds N] [--batches N] [--batch N]

(attempts) ``call_attempts`` batches: ``unnest`` of one array per column (the previous
    insert, kept here as the baseline) against one JSON document
    (``binding_store.recordset_insert``).
(outbox) ``webhook_events`` batches, the call events of the attempts (two a row): ``executemany``
    against one JSON document; "built only" is the cost of making the events' rows, unwritten.
(both) what the attempt writer does with webhooks on, per attempt: the insert returning the
    calls it inserted with their buyer facts, then the events built in Python and written as
    one document (the previous writer, kept here as the baseline), against one statement in
    which PostgreSQL builds and writes the events (``binding_store.decision_events_sql``).

Each round runs both variants (interleaved) on one scratch database; CPU is this process's
(``time.process_time``: the driver, SQLAlchemy, serialisation) and the server backend's
(``bench.common.proc_cpu_seconds`` of ``pg_backend_pid``). Only the ratio in one run means much.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any, cast

from sqlalchemy import (
    Select,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert

from bench.common import print_table, proc_cpu_seconds, ratio, scratch_pg, write_result
from binding_store import decision_events_sql
from binding_store import models as m
from binding_store.attempt_writer import attempt_row
from binding_store.db import Database
from binding_store.models import Base
from binding_store.outbox import Outbox
from binding_store.outbox import rows as event_rows
from binding_store.recordset_insert import as_document, recordset_insert
from binding_store.webhook_models import WebhookEvent
from routing.events import BindingFacts, decision_events
from routing.model import Action, CallAttempt, Reason

NAME = "batch_writes"


def unnest_insert(table: Table, columns: Sequence[str]) -> Insert:
    """The previous insert: ``INSERT INTO table (columns) SELECT * FROM unnest(...)``, one
    array parameter per column, named after it. Unbounded element types, so a value too long
    for its column fails as a plain insert would."""
    arrays = [bindparam(name, type_=ARRAY(
        String() if isinstance(table.c[name].type, String) else table.c[name].type))
        for name in columns]
    source: Select[Any] = select(literal_column("*")).select_from(func.unnest(*arrays))
    return pg_insert(table).from_select(list(columns), source)


def as_arrays(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in columns}

_ATTEMPTS = cast(Table, m.CallAttempt.__table__)
_EVENTS = cast(Table, WebhookEvent.__table__)
_COLUMNS = tuple(c.name for c in _ATTEMPTS.columns if c.name != "id")
_UNNEST = unnest_insert(_ATTEMPTS, _COLUMNS).on_conflict_do_nothing()
_JSON = recordset_insert(_ATTEMPTS, _COLUMNS, on_conflict="ON CONFLICT DO NOTHING")
_EVENTS_JSON = recordset_insert(_EVENTS, tuple(c.name for c in _EVENTS.columns if c.name != "id"))
# The previous writer's insert: the calls it inserted and their bindings' buyer facts.
_INSERTED = recordset_insert(_ATTEMPTS, _COLUMNS, on_conflict="ON CONFLICT DO NOTHING",
                             returning=("system_name", "uniqueid", "binding_id"))
_INSERT_FACTS = text(
    f"WITH inserted AS ({_INSERTED.text}) "
    "SELECT i.system_name, i.uniqueid, b.buyer_masked, b.buyer_id FROM inserted i "
    "LEFT JOIN bindings b ON b.id = i.binding_id AND i.binding_id <> ''")


def attempts(start: int, n: int, at: datetime) -> list[CallAttempt]:
    return [CallAttempt(uniqueid=f"{1764800000 + i}.{i % 997}", linkedid=f"{1764800000 + i}.1",
                        at=at, caller_masked="138****0001", caller_a="+8613800000001",
                        virtual_x="+8617000000001", action=Action.REJECT,
                        reason=Reason.CALLER_NOT_AUTHORIZED, direction=None, binding_id="",
                        shop_id="shop-1", order_id="order-1", system_name="pbx")
            for i in range(start, start + n)]


Write = Callable[[Any, list[CallAttempt]], Awaitable[None]]


async def measure(db: Database, write: Write, batches: int, size: int, base: int
                  ) -> tuple[float, float]:
    """(client µs per row, server µs per row) of ``batches`` batches of ``size``."""
    at = datetime(2026, 12, 4, 12, tzinfo=UTC)
    async with db.session() as s:
        pid = int((await s.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        server0, client0 = proc_cpu_seconds(pid), time.process_time()
        for b in range(batches):
            await write(s, attempts(base + b * size, size, at + timedelta(seconds=b)))
            await s.commit()
        client, server = time.process_time() - client0, proc_cpu_seconds(pid) - server0
    rows = batches * size
    return client / rows * 1e6, server / rows * 1e6


async def attempts_unnest(s: Any, batch: list[CallAttempt]) -> None:
    await s.execute(_UNNEST, as_arrays([attempt_row(a) for a in batch], _COLUMNS))


async def attempts_json(s: Any, batch: list[CallAttempt]) -> None:
    await s.execute(_JSON, as_document([attempt_row(a) for a in batch]))


def _events(batch: list[CallAttempt]) -> list[dict[str, Any]]:
    events = [e for a in batch for e in decision_events(a)]
    return event_rows(events, batch[0].at)


async def events_executemany(s: Any, batch: list[CallAttempt]) -> None:
    await s.execute(insert(_EVENTS), _events(batch))


async def events_json(s: Any, batch: list[CallAttempt]) -> None:
    await s.execute(_EVENTS_JSON, as_document(_events(batch)))


async def events_only(s: Any, batch: list[CallAttempt]) -> None:
    _events(batch)  # the events and their rows, not written: the part no insert can save


async def both_python(s: Any, batch: list[CallAttempt]) -> None:
    found = await s.execute(_INSERT_FACTS, as_document([attempt_row(a) for a in batch]))
    inserted = {(str(name), str(uid)): BindingFacts(buyer_masked=masked or "",
                                                    buyer_id=buyer_id or "")
                for name, uid, masked, buyer_id in found}
    fresh = []
    for attempt in batch:
        facts = inserted.pop((attempt.system_name, attempt.uniqueid), None)
        if facts is not None:
            fresh.append((attempt, facts))
    events = [e for attempt, facts in fresh for e in decision_events(attempt, facts)]
    await Outbox().write(s, events, max(a.at for a, _ in fresh))


async def both_postgresql(s: Any, batch: list[CallAttempt]) -> None:
    await s.execute(decision_events_sql.INSERT_WITH_EVENTS,
                    decision_events_sql.parameters([attempt_row(a) for a in batch]))


async def run(rounds: int, batches: int, size: int) -> dict[str, Any]:
    variants: dict[str, Write] = {
        "attempts unnest": attempts_unnest, "attempts json": attempts_json,
        "events executemany": events_executemany, "events json": events_json,
        "events built only": events_only,
        "attempts + events, Python": both_python,
        "attempts + events, PostgreSQL": both_postgresql}
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    events: dict[str, int] = {}  # events each variant left in the outbox (its last round)
    async with scratch_pg("batchw") as url:
        db = Database(url, timeout=10.0)
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        base = 0
        for _ in range(rounds):
            for name, write in variants.items():
                await measure(db, write, 2, size, base + 10_000_000)  # warm statement caches
                found[name].append(await measure(db, write, batches, size, base))
                base += batches * size
                async with db.session() as s:  # the same table size for every variant
                    events[name] = int((await s.execute(
                        select(func.count()).select_from(_EVENTS))).scalar_one())
                    await s.execute(delete(_ATTEMPTS))
                    await s.execute(delete(_EVENTS))
                    await s.commit()
        await db.dispose()
    result = {name: {"client_us_per_row": median(c for c, _ in xs),
                     "server_us_per_row": median(v for _, v in xs),
                     "events_written": events[name]}
              for name, xs in found.items()}
    table = [[name, f"{r['client_us_per_row']:.1f}", f"{r['server_us_per_row']:.1f}"]
             for name, r in result.items()]
    print_table(f"batch writes, {batches} x {size} rows, median of {rounds} rounds",
                ["variant", "client µs/row", "server µs/row"], table)
    for old, new in (("attempts unnest", "attempts json"), ("events executemany", "events json"),
                     ("attempts + events, Python", "attempts + events, PostgreSQL")):
        print(f"{new} / {old} client CPU: "
              f"{ratio(result[new]['client_us_per_row'], result[old]['client_us_per_row'])}"
              f"; server CPU: "
              f"{ratio(result[new]['server_us_per_row'], result[old]['server_us_per_row'])}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5 batches")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--batches", type=int)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    batches = args.batches or (5 if args.quick else 20)
    write_result(NAME, asyncio.run(run(rounds, batches, args.batch)))
