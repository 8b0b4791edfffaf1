"""The AMI listener end to end: a fake AMI server over a real socket, the call log on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agi.ami_listener import AmiListener, AmiListenerConfig
from binding_store.all_models import Base
from binding_store.call_log import CallLogStore
from binding_store.call_log_audit import verify
from binding_store.cdr_models import Cdr
from binding_store.db import Database
from routing.cdr import CdrEvent
from routing.errors import AmiUnavailable
from tests.agi.fake_ami import FakeAmi, events_of
from tests.fixtures.ami.scenario import ALL_CALLS, SCENARIO_FILES, SESSION, seed

SECRET = "s3cret"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'cdr.db'}", timeout=5.0)
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await seed(database)
    yield database
    await database.dispose()


def _config(port: int, **kw: float | int | str) -> AmiListenerConfig:
    base: dict[str, object] = dict(port=port, secret=SECRET, ping_interval=0.2,
                                   ping_timeout=0.2, reconnect_delay=0.05, batch_seconds=0.02,
                                   login_timeout=2.0)
    base.update(kw)
    return AmiListenerConfig(**base)  # type: ignore[arg-type]


async def _until(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)


async def _count(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(Cdr)) or 0)


async def _run(listener: AmiListener) -> asyncio.Task[None]:
    return asyncio.create_task(listener.run())


@pytest.mark.parametrize("path", [SESSION, *SCENARIO_FILES], ids=lambda p: p.stem)
async def test_recorded_stream_lands_once_and_replay_is_idempotent(
        db: Database, path: Path) -> None:
    stream = events_of(path)
    server = FakeAmi([stream, stream], secret=SECRET)
    port = await server.start()
    listener = AmiListener(_config(port), CallLogStore(db))
    task = await _run(listener)
    expected = ALL_CALLS if path == SESSION else 1
    await _until(lambda: listener.stats.stored == expected and not listener.queued)
    server.drop()  # Asterisk restarts and (hypothetically) sends everything again
    cdrs = stream.count(b"Event: Cdr\r\n")
    await _until(lambda: listener.stats.cdr_events == 2 * cdrs and not listener.queued)
    await listener.stop()
    await task
    await server.close()
    assert await _count(db) == expected
    assert listener.stats.stored == expected
    assert listener.stats.connects == 2
    assert (await verify(db)).ok


async def test_watchdog_reconnects_when_pings_go_unanswered_and_reconcile_runs(
        db: Database) -> None:
    server = FakeAmi([events_of(SESSION)], secret=SECRET)
    port = await server.start()
    reconciled: list[str] = []

    async def reconcile(system_name: str) -> int:
        reconciled.append(system_name)
        return 0

    listener = AmiListener(_config(port), CallLogStore(db), reconcile)
    task = await _run(listener)
    await _until(lambda: listener.stats.stored == ALL_CALLS)
    server.answer_pings = False  # hung Asterisk: socket open, nothing answers
    await _until(lambda: listener.stats.watchdog_reconnects >= 1)
    server.answer_pings = True
    await _until(lambda: listener.stats.connects >= 2 and len(reconciled) >= 2)
    await listener.stop()
    await task
    await server.close()
    assert reconciled[-1] == "pnlab"  # the system name is learnt from the events
    assert server.connections >= 2
    assert await _count(db) == ALL_CALLS


async def test_wrong_secret_keeps_retrying_and_stop_is_prompt(db: Database) -> None:
    server = FakeAmi(secret="other")
    port = await server.start()
    listener = AmiListener(_config(port), CallLogStore(db))
    task = await _run(listener)
    await _until(lambda: server.connections >= 2)
    assert not listener.connected.is_set()
    assert "refused" in listener.stats.last_error
    await listener.stop()
    async with asyncio.timeout(3):
        await task
    await server.close()


class SlowSink:
    """A store that takes its time: the listener must stop reading, not grow its buffer."""

    def __init__(self) -> None:
        self.rows = 0
        self.keys: set[tuple[str, str]] = set()

    async def write_batch(self, events: Sequence[CdrEvent], source: str = "ami") -> int:
        await asyncio.sleep(0.01)
        new = {e.key for e in events} - self.keys
        self.keys |= new
        self.rows += len(events)
        return len(new)

    async def close_orphans(self, now: datetime, grace_seconds: float) -> int:
        return 0


def _many_cdrs(count: int) -> bytes:
    """``count`` distinct call-record Cdr events, built from a recorded one."""
    template = events_of(SESSION).split(b"\r\n\r\n")
    cdr = next(b for b in template if b.startswith(b"Event: Cdr") and b"PnX: 9001" in b)
    uid = b"b4f3cce0-9778-4025-adf8-d6aac89dde5f-2"
    return b"".join(cdr.replace(uid, f"bulk-{n}".encode()) + b"\r\n\r\n" for n in range(count))


async def test_back_pressure_bounds_the_buffer_with_a_slow_sink() -> None:
    server = FakeAmi([_many_cdrs(3000)], secret=SECRET)
    port = await server.start()
    sink = SlowSink()
    listener = AmiListener(_config(port, queue_max=100, batch_size=20, ping_interval=30),
                           sink)
    task = await _run(listener)
    await _until(lambda: len(sink.keys) == 3000, 60)
    await listener.stop()
    await task
    await server.close()
    assert listener.stats.pauses >= 1
    # bounded by queue_max plus what one socket read already held (256 KiB of events)
    assert listener.stats.queue_peak < 100 + 600
    assert listener.stats.stored == 3000


async def test_stop_flushes_everything_buffered(db: Database) -> None:
    server = FakeAmi([events_of(SESSION)], secret=SECRET)
    port = await server.start()
    listener = AmiListener(_config(port, batch_seconds=30, batch_size=1000), CallLogStore(db))
    task = await _run(listener)
    await _until(lambda: listener.stats.records_queued == ALL_CALLS + 1)  # SIP call: 2 forks
    assert await _count(db) == 0  # still waiting for its batch to fill
    await listener.stop()
    await task
    await server.close()
    assert await _count(db) == ALL_CALLS


async def test_originate_always_async_and_refused_when_disconnected(db: Database) -> None:
    server = FakeAmi(secret=SECRET)
    port = await server.start()
    listener = AmiListener(_config(port), CallLogStore(db))
    with pytest.raises(AmiUnavailable):
        await listener.originate("PJSIP/100", context="pn-inbound", exten="9001")
    task = await _run(listener)
    await _until(listener.connected.is_set)
    action_id = await listener.originate("PJSIP/100", context="pn-inbound", exten="9001",
                                         caller_id="13800000001",
                                         variables={"PRIVNUM_X": "9001"})
    sent = [a for a in server.actions if a.get("Action") == "Originate"]
    assert sent[0]["Async"] == "true" and sent[0]["ActionID"] == action_id
    assert listener.stats.connects == 1  # the connection survived
    await listener.stop()
    await task
    await server.close()


@pytest.mark.postgres
async def test_a_record_the_call_log_refuses_is_logged_and_counted_the_rest_stored(
        pg_database: Database, caplog: pytest.LogCaptureFixture) -> None:
    """PostgreSQL refuses an order id wider than its column: that record alone is left out
    (one error line, counted); the other records of its batch are stored."""
    await seed(pg_database)
    events = _many_cdrs(12).split(b"\r\n\r\n")
    events[5] = events[5].replace(b"PnBinding: B-9001",
                                  b"PnBinding: B-none\r\nPnOrder: " + b"o" * 70)
    server = FakeAmi([b"\r\n\r\n".join(events)], secret=SECRET)
    port = await server.start()
    listener = AmiListener(_config(port, batch_size=50, batch_seconds=0.2),
                           CallLogStore(pg_database))
    task = await _run(listener)
    await _until(lambda: listener.stats.stored + listener.stats.refused == 12)
    await listener.stop()
    await task
    await server.close()
    assert (listener.stats.stored, listener.stats.refused) == (11, 1)
    assert await _count(pg_database) == 11
    refused = [r.getMessage() for r in caplog.records
               if "refused by the call log" in r.getMessage()]
    assert refused == ["call record uniqueid=bulk-5 refused by the call log, not stored "
                       "(DataError)"]


async def test_metrics_show_the_connection_the_records_and_their_ingest_lag(
        db: Database) -> None:
    from datetime import UTC, timedelta

    from api.metrics import Metrics

    stream = events_of(SESSION)
    server = FakeAmi([stream], secret=SECRET)
    port = await server.start()
    metrics = Metrics()
    # A fixed clock one minute after the recorded session's last call: the lag is measured
    # against it, never against today's date.
    ends: list[datetime] = []
    listener = AmiListener(_config(port), CallLogStore(db), observe_lag=metrics.cdr_lag,
                           clock=lambda: max(ends) + timedelta(minutes=1) if ends
                           else datetime(2026, 1, 1, tzinfo=UTC))
    metrics.watch_listener(listener)
    original = listener.sink.write_batch

    async def write_batch(events: Sequence[CdrEvent], source: str) -> int:
        ends.extend(e.end for e in events)
        return await original(events, source)

    listener.sink.write_batch = write_batch  # type: ignore[method-assign]
    task = await _run(listener)
    await _until(lambda: listener.stats.stored == ALL_CALLS and not listener.queued)
    text = metrics.render().decode()
    assert "privnum_ami_connected 1.0" in text
    assert f'privnum_cdr_records_total{{path="ami"}} {float(ALL_CALLS)}' in text
    assert f"privnum_cdr_ingest_lag_seconds_count {float(ALL_CALLS)}" in text
    assert 'privnum_ami_connects_total{result="ok"} 1.0' in text
    server.drop()
    await server.close()
    await _until(lambda: not listener.is_connected)
    assert "privnum_ami_connected 0.0" in metrics.render().decode()
    await listener.stop()
    await task
