"""The console's reads on SQLite and PostgreSQL: the pool by region and state (in use,
cooling down, free), calls per day in a zone, one call by id, the chain check."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update

from binding_store.call_log import CallLogStore
from binding_store.cdr_models import Cdr
from binding_store.console_reader import ConsoleReader, call_bucket
from binding_store.db import Database
from binding_store.extension_models import PoolExtension
from binding_store.models import Binding, PoolNumber, Shop
from routing.console_views import pool_by
from routing.model import PoolState
from tests.fixtures.ami.scenario import CALL_DAY, NOW, SHOP, cdr_events, seed

COOLDOWN = timedelta(hours=1)


async def test_pool_use_by_region_mode_and_state(database: Database) -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    ext_x = "+8617000000008"
    async with database.session() as s:
        s.add_all([
            PoolNumber(number="+8617000000001", region="east", created_at=now),  # in use
            PoolNumber(number="+8617000000002", region="east", created_at=now,  # cooling
                       last_released_at=now - timedelta(minutes=10)),
            PoolNumber(number="+8617000000003", region="east", created_at=now,  # free again
                       last_released_at=now - timedelta(hours=2)),
            PoolNumber(number="+8617000000004", region="west", created_at=now),  # free
            PoolNumber(number="+8617000000005", region="west", created_at=now,
                       state=PoolState.QUARANTINED.value),
            PoolNumber(number="+8617000000006", region="west", created_at=now,
                       state=PoolState.RETIRED.value),
            PoolNumber(number="+8617000000007", region="west", created_at=now),  # expired
            PoolNumber(number=ext_x, region="east", created_at=now, mode="extension",
                       extension_length=1),  # ten slots, two held
        ])
        await s.flush()
        s.add_all(PoolExtension(number=ext_x, extension=str(d)) for d in range(10))
        s.add(Shop(id="s1", name="S", level="L1", service_state="enabled", created_at=now,
                   updated_at=now))
        await s.flush()
        bound = ((1, "+8617000000001", "", 1), (7, "+8617000000007", "", -1),
                 (8, ext_x, "1", 1), (9, ext_x, "2", 1), (10, ext_x, "3", -1))
        for i, x, extension, hours in bound:
            s.add(Binding(id=f"b{i}", shop_id="s1", order_id=f"o{i}", caller_a="+8613800000001",
                          virtual_x=x, buyer_cipher=b"x", buyer_bidx=f"i{i}",
                          buyer_masked="139****0001", created_at=now - timedelta(hours=3),
                          expires_at=now + timedelta(hours=hours), extension=extension))
        await s.commit()
    pool = await ConsoleReader(database).pool_use(now, COOLDOWN)
    assert [(p.region, p.mode) for p in pool] == [("east", "axb"), ("east", "extension"),
                                                  ("west", "axb")]
    east_axb, east_ext, west = pool
    assert (east_axb.free, east_axb.in_use, east_axb.cooling_down) == (1, 1, 1)
    assert (east_axb.slots, east_ext.in_use, east_ext.slots, east_ext.slots_in_use) == (
        0, 1, 10, 2)
    assert (west.free, west.in_use, west.quarantined, west.retired) == (2, 0, 1, 1)
    regions = pool_by(pool, lambda p: p.region)
    assert [(r.region, r.total, r.in_use) for r in regions] == [("east", 4, 2),
                                                               ("west", 4, 0)]
    modes = pool_by(pool, lambda p: p.mode)
    assert [(m.region, m.total, m.slots_in_use) for m in modes] == [("axb", 7, 0),
                                                                   ("extension", 1, 2)]


async def test_calls_per_day_one_call_and_the_chain(database: Database) -> None:
    await seed(database)
    await CallLogStore(database).write_batch(cdr_events())
    reader = ConsoleReader(database)
    shanghai = ZoneInfo("Asia/Shanghai")
    days = await reader.calls_per_day(NOW - timedelta(days=2), NOW, shanghai)
    assert [d.day for d in days] == [date(2026, 11, 26), date(2026, 11, 27),
                                     date(2026, 11, 28)]  # in Shanghai, empty days too
    busy = [d for d in days if d.total]
    # 12:35 UTC is 20:35 in Shanghai: every call on the 28th there.
    assert [d.day for d in busy] == [CALL_DAY.astimezone(shanghai).date()]
    assert busy[0].total == 6 and busy[0].counts["bridged"] == 4
    assert set(busy[0].counts) == {"bridged", "binding_expired", "routing_error"}
    async with database.session() as s:
        first = (await s.execute(select(Cdr.id).where(Cdr.shop_id == SHOP).limit(1))).scalar()
    assert first is not None
    found = await reader.call(first)
    assert found is not None and found.record.shop_id == SHOP
    assert await reader.call(10**9) is None
    check = await reader.verify_chain()
    assert check.ok and check.rows == 6 and check.findings == ()


async def test_chain_findings_name_the_shop_and_position(database: Database) -> None:
    await seed(database)
    await CallLogStore(database).write_batch(cdr_events())
    async with database.session() as s:
        rows = list((await s.execute(select(Cdr.id, Cdr.chain_seq)
                                     .order_by(Cdr.chain_seq))).all())
        await s.execute(update(Cdr).where(Cdr.id == rows[1].id).values(billsec=999))
        await s.execute(delete(Cdr).where(Cdr.id == rows[3].id))
        await s.commit()
    check = await ConsoleReader(database).verify_chain()
    assert not check.ok
    assert [(f.kind, f.position, f.shop_id) for f in check.findings] == [
        ("altered", rows[1].chain_seq, SHOP), ("deleted", rows[3].chain_seq, None)]
    assert f"chain seq {rows[1].chain_seq}" in check.findings[0].detail


def test_bridged_calls_are_one_bucket_and_refusals_by_reason() -> None:
    assert call_bucket("answered", "bridged") == call_bucket("not_answered", "") == "bridged"
    assert call_bucket("rejected", "caller_not_authorized") == "caller_not_authorized"
    assert call_bucket("rejected", "") == "unknown"
