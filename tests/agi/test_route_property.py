"""Property on the real store: over random pools, bindings and callers, a call is bridged if
and only if a valid active (A, X) or (B, X) binding exists (and then to the right party)."""

from __future__ import annotations

import asyncio
import io
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binding_store.accounts import AccountRepository
from binding_store.all_models import Base
from binding_store.bindings import BindingStore
from binding_store.callers import CallerRepository
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.pool import PoolRepository
from binding_store.route_lookup import StoreRouteLookup
from binding_store.shops import ShopRepository
from routing.decide import decide
from routing.errors import PoolExhausted
from routing.model import Action, CallRequest

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
MERCHANTS = ["+8613800000001", "+8613800000002", "+8613800000003"]
BUYERS = ["+8613900000001", "+8613900000002", "+8613900000003", "+8613900000004"]
STRANGER = "+8613700000009"

# Each planned binding: (merchant index, buyer index, ttl minutes, released after minutes or None)
plans = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(1, 120),
              st.one_of(st.none(), st.integers(0, 120))),
    min_size=1, max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool_size=st.integers(1, 3), planned=plans, probe_minute=st.integers(0, 130))
def test_bridged_iff_valid_active_binding(pool_size: int, planned: list[tuple[int, int, int,
                                          int | None]], probe_minute: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_check(Path(tmp), pool_size, planned, probe_minute))


async def _check(tmp: Path, pool_size: int, planned: list[tuple[int, int, int, int | None]],
                 probe_minute: int) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp / 'p.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        cipher = BuyerCipher(KeyRing.generate())
        await ShopRepository(db).enable("s", now=T0, main_account_id="m", main_phone=MERCHANTS[0],
                                        agreement_version="v1", accepted_by="m")
        for i, phone in enumerate(MERCHANTS[1:], start=1):
            await AccountRepository(db).add_sub_account("s", f"sub{i}", actor="m", now=T0,
                                                        phone=phone, phone_reviewed=True)
            await CallerRepository(db).add("s", phone, actor="m", now=T0)
        rows = "".join(f"+86170000000{i:02d},r\n" for i in range(pool_size))
        await PoolRepository(db).import_csv(io.StringIO("number,region\n" + rows), now=T0)
        store = BindingStore(db, cipher)
        # a, b, x, expiry, released-at: a release takes effect at once, whatever its timestamp
        live: list[tuple[str, str, str, datetime, datetime | None]] = []
        for n, (mi, bi, ttl, released_after) in enumerate(planned):
            a, b = MERCHANTS[mi], BUYERS[bi]
            try:
                got = await store.issue("s", f"o{n}", "buyer", a, b, T0,
                                        ttl=timedelta(minutes=ttl), actor="m")
            except PoolExhausted:
                continue
            released = None
            if released_after is not None and released_after < ttl:
                released = T0 + timedelta(minutes=released_after)
                await store.release(got.binding_id, actor="m", now=released)
            live.append((a, b, got.virtual_x, got.expires_at, released))
        now = T0 + timedelta(minutes=probe_minute)
        lookup = StoreRouteLookup(db, cipher)
        xs = [f"+86170000000{i:02d}" for i in range(pool_size)]
        for caller in [*MERCHANTS, *BUYERS, STRANGER]:
            for x in xs:
                context = await lookup.find_for_call(caller, x, now)
                d = decide(CallRequest(caller, x, "u", "l"), context, now, 60)
                valid = [(a, b) for a, b, bx, exp, rel in live
                         if bx == x and now < exp and rel is None
                         and caller in (a, b)]
                assert (d.action is Action.BRIDGE) == bool(valid), (caller, x, live, now)
                if valid:
                    a, b = valid[0]
                    assert d.dial_number == (b if caller == a else a)
                    assert d.present_number == x
    finally:
        await db.dispose()
