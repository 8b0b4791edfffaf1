"""Two privnum nodes, one call log: the same CDRs ingested by both (each with its own database
engine, as two processes have; one AMI listener per Asterisk is the rule, but a second one by
mistake, a reconcile of the safety-net CSV on another node, or an AMI replay after a node's
restart all deliver a record twice) leave one row per call and one intact chain."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from binding_store.call_log import CallLogStore
from binding_store.call_log_audit import verify
from binding_store.cdr_models import Cdr
from binding_store.db import Database
from tests.fixtures.ami.scenario import ALL_CALLS, cdr_events, seed


async def _count(db: Database) -> int:
    async with db.session() as s:
        return int((await s.scalar(select(func.count()).select_from(Cdr))) or 0)


async def test_the_same_cdrs_ingested_by_two_nodes_are_stored_once(database: Database) -> None:
    await seed(database)
    other = Database(database.url, timeout=database.timeout)  # the second node's engine
    try:
        node1, node2 = CallLogStore(database), CallLogStore(other)
        events = cdr_events()
        stored = await asyncio.gather(node1.write_batch(events), node2.write_batch(events),
                                      node2.write_batch(events[3:], source="csv"))
        assert sum(stored) == ALL_CALLS  # each call stored by exactly one of them
        assert await _count(database) == ALL_CALLS
        assert await node2.write_batch(events) == 0  # and again later: nothing new
        assert await _count(other) == ALL_CALLS
        report = await verify(database)
        assert report.ok, report.problems
        assert report.head_seq == ALL_CALLS
    finally:
        await other.dispose()
