"""The delivery queue on SQLite and PostgreSQL: fan-out by filter, per-stream order, batches,
leases, the retry ladder and its dead letters, replay, purge; on PostgreSQL two workers
claiming at once never take the same delivery or two of one stream."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from binding_store.db import Database
from binding_store.outbox import Outbox
from binding_store.webhook_queue import DeliveryQueue
from binding_store.webhooks import SubscriptionStore
from routing.events import Event, EventType
from routing.webhooks import DeliveryState, EventFilter, RetryLadder

NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
LADDER = RetryLadder.of_minutes([1, 4])


async def write(db: Database, *events: tuple[EventType, str, str]) -> None:
    async with db.session() as s:
        await Outbox().write(s, [Event(t, stream, shop, NOW, {"n": i})
                                 for i, (t, stream, shop) in enumerate(events)], NOW)
        await s.commit()


async def subscribe(db: Database, events: str = "*", shop: str | None = None,
                    batch: int = 5) -> str:
    new = await SubscriptionStore(db).add(url="http://127.0.0.1:17999/h", now=NOW, actor="t",
                                          events=EventFilter.parse(events), shop_id=shop,
                                          batch_size=batch)
    return new.subscription.id


def types(batch_events: tuple[dict[str, object], ...]) -> list[tuple[object, object]]:
    return [(e["type"], e["stream"]) for e in batch_events]


async def test_order_batches_and_filters(database: Database) -> None:
    everything = await subscribe(database)
    bindings_only = await subscribe(database, "binding.*", shop="s2", batch=1)
    await write(database, (EventType.BINDING_CREATED, "order:s1:o1", "s1"),
                (EventType.CALL_STARTED, "call:c1", "s1"),
                (EventType.BINDING_RELEASED, "order:s1:o1", "s1"),
                (EventType.BINDING_CREATED, "order:s2:o9", "s2"))
    queue = DeliveryQueue(database, LADDER)
    assert await queue.dispatch(NOW) == 4
    assert await queue.dispatch(NOW) == 0
    first = await queue.claim(NOW, lease=LEASE, requests=10)
    got = {c.subscription.id: types(c.events) for c in first}
    # One event per stream per round: o1's release waits for its creation.
    assert got[everything] == [("binding.created", "order:s1:o1"), ("call.started", "call:c1"),
                               ("binding.created", "order:s2:o9")]
    assert got[bindings_only] == [("binding.created", "order:s2:o9")]
    assert await queue.claim(NOW, lease=LEASE, requests=10) == []  # leased, and o1 blocked
    for c in first:
        await queue.delivered(c.delivery_ids, NOW, 200)
    second = await queue.claim(NOW, lease=LEASE, requests=10)
    assert [types(c.events) for c in second] == [[("binding.released", "order:s1:o1")]]
    assert second[0].events[0]["sequence"] > first[0].events[0]["sequence"]  # type: ignore[operator]


async def test_ladder_pause_dead_letter_and_replay(database: Database) -> None:
    sub = await subscribe(database, batch=1)
    await write(database, (EventType.BINDING_CREATED, "order:s1:o1", "s1"),
                (EventType.BINDING_RELEASED, "order:s1:o1", "s1"),
                (EventType.CALL_STARTED, "call:c1", "s1"))
    queue = DeliveryQueue(database, LADDER)
    await queue.dispatch(NOW)
    now = NOW
    for attempt, rung in enumerate([timedelta(minutes=1), timedelta(minutes=4)], start=1):
        claimed = await queue.claim(now, lease=LEASE, requests=1)
        assert types(claimed[0].events) == [("binding.created", "order:s1:o1")]
        assert claimed[0].attempt == attempt
        assert await queue.failed(claimed[0].delivery_ids, now, subscription_id=sub,
                                  status=500, error="HTTP 500") == 0
        # Paused for the first rung: not even the other stream's event goes out meanwhile.
        assert await queue.claim(now + timedelta(seconds=59), lease=LEASE, requests=5) == []
        now += rung
    claimed = await queue.claim(now, lease=LEASE, requests=1)
    assert await queue.failed(claimed[0].delivery_ids, now, subscription_id=sub, status=None,
                              error="ConnectError") == 1  # third failure: past the ladder
    stats = await queue.stats(now)
    assert (stats.pending, stats.dead) == (2, 1)
    # The dead letter no longer holds its stream: the release goes out next.
    later = now + timedelta(minutes=1)
    claimed = await queue.claim(later, lease=LEASE, requests=5)
    assert types(claimed[0].events) == [("binding.released", "order:s1:o1")]
    history = await queue.deliveries(subscription_id=sub, state=DeliveryState.DEAD)
    assert [(d.event_type, d.attempts, d.last_error) for d in history] == [
        ("binding.created", 3, "ConnectError")]
    assert await queue.replay(sub, now=later, actor="t") == 1
    again = await queue.deliveries(subscription_id=sub, state=DeliveryState.PENDING)
    assert {d.event_id for d in again} >= {history[0].event_id}  # the same event id


async def test_a_dead_workers_lease_runs_out(database: Database) -> None:
    await subscribe(database)
    await write(database, (EventType.CALL_STARTED, "call:c1", "s1"))
    queue = DeliveryQueue(database, LADDER)
    await queue.dispatch(NOW)
    taken = await queue.claim(NOW, lease=LEASE, requests=1)
    assert await queue.claim(NOW + timedelta(seconds=29), lease=LEASE, requests=1) == []
    retaken = await queue.claim(NOW + timedelta(seconds=31), lease=LEASE, requests=1)
    assert retaken[0].delivery_ids == taken[0].delivery_ids


async def test_purge_keeps_what_is_waiting(database: Database) -> None:
    await subscribe(database, batch=1)
    await write(database, (EventType.CALL_STARTED, "call:c1", "s1"),
                (EventType.CALL_STARTED, "call:c2", "s1"))
    queue = DeliveryQueue(database, LADDER)
    await queue.dispatch(NOW)
    done = await queue.claim(NOW, lease=LEASE, requests=1)
    await queue.delivered(done[0].delivery_ids, NOW, 204)
    assert await queue.purge(NOW + timedelta(days=1)) == 1
    stats = await queue.stats(NOW + timedelta(days=1))
    assert stats.pending == 1 and stats.oldest_pending_seconds == 86400
    assert len(await queue.deliveries()) == 1


@pytest.mark.postgres
async def test_two_workers_never_share_a_delivery(pg_database: Database) -> None:
    await subscribe(pg_database, batch=3)
    await write(pg_database, *[(EventType.CALL_STARTED, f"call:c{i % 10}", "s1")
                               for i in range(40)])
    queues = [DeliveryQueue(pg_database, LADDER), DeliveryQueue(pg_database, LADDER)]
    await asyncio.gather(*(q.dispatch(NOW, limit=7) for q in queues * 3))
    claims = await asyncio.gather(*(q.claim(NOW, lease=LEASE, requests=2) for q in queues))
    taken = [d for batches in claims for c in batches for d in c.delivery_ids]
    streams = [e["stream"] for batches in claims for c in batches for e in c.events]
    assert taken and len(taken) == len(set(taken))
    assert len(streams) == len(set(streams))  # never two of one call in flight
    stats = await queues[0].stats(NOW)
    assert stats.undispatched == 0 and stats.pending == 40
