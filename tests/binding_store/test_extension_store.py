"""Extension mode in the store (SQLite and PostgreSQL): a number's mode and slots, AXB first
with extension overflow, (X, extension) released with its last-release time, the caller's
cool-down per slot, switches, and the SQL slot choice against the pure rule."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from binding_store.binding_policy import BindingPolicy
from binding_store.bindings import BindingStore
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.extension_models import NEVER, PoolExtension
from binding_store.extension_store import ExtensionPool, select_extension_slot
from binding_store.models import Binding, CallerNumber, PoolNumber
from routing.errors import Conflict, InvalidInput, PoolExhausted
from routing.extensions import ExtensionSlot, ModePolicy, NumberMode, choose_extension_slot
from tests.binding_store.test_bindings_helpers import A1, A2, NOW, X1, X2, buyer, seed, virtual

COOLDOWN = timedelta(hours=1)
EXT = NumberMode.EXTENSION


def _store(db: Database, cipher: BuyerCipher,
           policy: ModePolicy = ModePolicy.AXB_THEN_EXTENSION) -> BindingStore:
    return BindingStore(db, cipher, policy=BindingPolicy(cooldown=COOLDOWN, mode_policy=policy))


async def _extension_number(db: Database, x: str, length: int) -> None:
    await ExtensionPool(db).set_mode(x, EXT, length, actor="op", now=NOW)


async def test_set_mode_creates_and_removes_slots(database: Database) -> None:
    await seed(database, pool=[(X1, "", None)])
    pool = ExtensionPool(database)
    assert await pool.set_mode(X1, EXT, 2, actor="op", now=NOW) == (EXT, 2)
    async with database.session() as s:
        count = await s.scalar(select(func.count()).select_from(PoolExtension))
        first = (await s.execute(select(PoolExtension).order_by(PoolExtension.extension)
                                 )).scalars().first()
    assert count == 100 and first is not None and first.extension == "00"
    assert first.last_released_at == NEVER
    assert await pool.modes() == {X1: 2}
    assert await pool.set_mode(X1, NumberMode.AXB, None, actor="op", now=NOW) == (
        NumberMode.AXB, None)
    async with database.session() as s:
        assert await s.scalar(select(func.count()).select_from(PoolExtension)) == 0


@pytest.mark.parametrize("length", [None, 0, 5])
async def test_set_mode_needs_a_valid_length(database: Database, length: int | None) -> None:
    await seed(database, pool=[(X1, "", None)])
    with pytest.raises(InvalidInput, match="extension length"):
        await ExtensionPool(database).set_mode(X1, EXT, length, actor="op", now=NOW)


async def test_mode_change_refused_while_bound(database: Database, cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None)])
    await _store(database, cipher).issue("s1", "o1", "", A1, buyer(1), NOW, actor="t")
    with pytest.raises(Conflict, match="active binding"):
        await ExtensionPool(database).set_mode(X1, EXT, 1, actor="op", now=NOW)


async def test_axb_first_then_extension_overflow(database: Database, cipher: BuyerCipher
                                                 ) -> None:
    await seed(database, pool=[(X1, "", None), (X2, "", None)])
    await _extension_number(database, X2, 1)
    store = _store(database, cipher)
    first = await store.issue("s1", "o1", "", A1, buyer(1), NOW, actor="t")
    assert (first.virtual_x, first.extension) == (X1, "")
    rest = [await store.issue("s1", f"o{i}", "", A1, buyer(i), NOW, actor="t")
            for i in range(2, 12)]
    assert [(b.virtual_x, b.extension) for b in rest] == [(X2, str(d)) for d in range(10)]
    with pytest.raises(PoolExhausted):
        await store.issue("s1", "o99", "", A1, buyer(99), NOW, actor="t")


@pytest.mark.parametrize(("policy", "mode", "expected_x"), [
    (ModePolicy.EXTENSION_THEN_AXB, None, X2),
    (ModePolicy.AXB_THEN_EXTENSION, EXT, X2),
    (ModePolicy.EXTENSION, NumberMode.AXB, X1),
    (ModePolicy.AXB, None, X1),
])
async def test_policy_and_request_choose_the_mode(
        database: Database, cipher: BuyerCipher, policy: ModePolicy,
        mode: NumberMode | None, expected_x: str) -> None:
    await seed(database, pool=[(X1, "", None), (X2, "", None)])
    await _extension_number(database, X2, 3)
    got = await _store(database, cipher, policy).issue("s1", "o1", "", A1, buyer(1), NOW,
                                                       actor="t", mode=mode)
    assert got.virtual_x == expected_x
    assert got.extension == ("000" if expected_x == X2 else "")


async def test_release_frees_the_slot_and_cooldown_holds_it_from_a(
        database: Database, cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X2, "", None)])
    await _extension_number(database, X2, 1)
    store = _store(database, cipher, ModePolicy.EXTENSION)
    b0 = await store.issue("s1", "o0", "", A1, buyer(0), NOW, actor="t")
    assert b0.extension == "0"
    later = NOW + timedelta(minutes=5)
    await store.release(b0.binding_id, actor="t", now=later)
    async with database.session() as s:
        slot = await s.get(PoolExtension, (X2, "0"))
        assert slot is not None and slot.held_by is None and slot.last_released_at == later
    # A: slot 0 cools down, the never-released slot 1 comes first anyway.
    again = await store.issue("s1", "o1", "", A1, buyer(1), later, actor="t")
    assert again.extension == "1"
    # Every other slot taken by A2: A1 must wait for slot 0's cool-down; A2 may take it.
    for i in range(2, 10):
        await store.issue("s1", f"o{i}", "", A2, buyer(i), later, actor="t")
    with pytest.raises(PoolExhausted):
        await store.issue("s1", "o20", "", A1, buyer(20), later, actor="t")
    other = await store.issue("s1", "o21", "", A2, buyer(21), later, actor="t")
    assert other.extension == "0"


async def test_expired_binding_gives_its_slot_back(database: Database, cipher: BuyerCipher
                                                   ) -> None:
    await seed(database, pool=[(X2, "", None)])
    await _extension_number(database, X2, 1)
    store = _store(database, cipher, ModePolicy.EXTENSION)
    for i in range(10):
        await store.issue("s1", f"o{i}", "", A1, buyer(i), NOW, ttl=timedelta(minutes=5),
                          actor="t")
    later = NOW + timedelta(hours=2)  # expired and past A1's cool-down
    assert await store.expire_due(later) == 10
    got = await store.issue("s1", "o10", "", A1, buyer(10), later, actor="t")
    assert got.extension == "0"  # all released at the same moment: by extension


async def test_switch_keeps_the_slot_unless_the_new_caller_cools_down(
        database: Database, cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X2, "", None)])
    await _extension_number(database, X2, 1)
    store = _store(database, cipher, ModePolicy.EXTENSION)
    b = await store.issue("s1", "o1", "", A1, buyer(1), NOW, actor="t")
    moved = await store.switch_caller(b.binding_id, A2, actor="t", now=NOW)
    assert (moved.binding.virtual_x, moved.binding.extension, moved.x_changed) == (X2, "0",
                                                                                   False)
    async with database.session() as s:
        slot = await s.get(PoolExtension, (X2, "0"))
        assert slot is not None and slot.held_by == moved.binding.binding_id
    # Back to A1, whose cool-down on (X2, 0) runs: another slot.
    back = await store.switch_caller(moved.binding.binding_id, A1, actor="t", now=NOW)
    assert (back.binding.extension, back.x_changed) == ("1", True)
    async with database.session() as s:
        held = dict((await s.execute(select(PoolExtension.extension, PoolExtension.held_by)
                                     .where(PoolExtension.held_by.is_not(None)))).all())
    assert held == {"1": back.binding.binding_id}


def _moment(rng: random.Random) -> datetime:
    return NOW - timedelta(minutes=rng.choice([0, 10, 59, 60, 61, 600]))


@pytest.mark.parametrize("seed_value", range(4))
async def test_sql_slot_choice_equals_pure_choice(database: Database, seed_value: int) -> None:
    rng = random.Random(seed_value)
    numbers = [(virtual(i), rng.choice(["", "BJ"]), None) for i in range(3)]
    await seed(database, pool=numbers)
    for x, _, _ in numbers:
        await _extension_number(database, x, 1)
    slots: list[ExtensionSlot] = []
    released: dict[tuple[str, str], datetime] = {}
    held: set[tuple[str, str]] = set()
    async with database.session() as s:
        for row in (await s.execute(select(PoolExtension, PoolNumber.region).join(
                PoolNumber, PoolNumber.number == PoolExtension.number))).all():
            slot, region = row
            roll = rng.random()
            if roll < 0.3:
                slot.held_by = f"h{slot.number[-2:]}{slot.extension}"
                held.add((slot.number, slot.extension))
            elif roll < 0.7:
                slot.last_released_at = _moment(rng)
            slots.append(ExtensionSlot(slot.number, slot.extension, region,
                                       None if slot.last_released_at == NEVER
                                       else slot.last_released_at))
            if rng.random() < 0.3 and (slot.number, slot.extension) not in held:
                at = _moment(rng)
                s.add(Binding(id=f"r{slot.number[-2:]}{slot.extension}", shop_id="s1",
                              order_id=f"r{slot.number}{slot.extension}", caller_a=A1,
                              virtual_x=slot.number, extension=slot.extension,
                              buyer_cipher=b"", buyer_bidx="b", buyer_masked="",
                              created_at=at - timedelta(hours=1), expires_at=at,
                              released_at=at, state="released"))
                released[(slot.number, slot.extension)] = at
        await s.commit()
    for region in (None, "BJ"):
        pure = choose_extension_slot(slots, held=frozenset(held), released_to_a=released,
                                     now=NOW, cooldown=COOLDOWN, preferred_region=region)
        async with database.session() as s:
            got = await select_extension_slot(s, caller_a=A1, now=NOW, cooldown=COOLDOWN,
                                              preferred_region=region)
        assert got == (None if pure is None else (pure.number, pure.extension))


async def test_the_search_goes_past_windows_of_held_cooling_and_contested_slots(
        database: Database) -> None:
    """The search reads free slots a window at a time: the answer is the same slot when the
    first hundreds are held, cooling down for A or being taken by another allocation."""
    await seed(database, pool=[(X1, "", None)])
    await _extension_number(database, X1, 3)
    ext = [f"{i:03d}" for i in range(1000)]
    async with database.session() as s:
        rows = {r.extension: r for r in (await s.scalars(select(PoolExtension))).all()}
        for e in ext[:300]:  # held
            rows[e].held_by = f"h{e}"
        for n, e in enumerate(ext[300:700]):  # released by A within the cool-down
            at = NOW - timedelta(minutes=1 + n % 50)
            s.add(Binding(id=f"r{e}", shop_id="s1", order_id=f"r{e}", caller_a=A1,
                          virtual_x=X1, extension=e, buyer_cipher=b"", buyer_bidx="b",
                          buyer_masked="", created_at=at - timedelta(hours=1), expires_at=at,
                          released_at=at, state="released"))
        await s.commit()
    contested = {f"{X1}#{e}" for e in ext[:720]}  # the retry loop's contested slots
    async with database.session() as s:
        # never released first: the free, uncooled ones start at 700 (cooling ones are
        # never-released slots too: A's bindings did not release them in this world)
        assert await select_extension_slot(s, caller_a=A1, now=NOW, cooldown=COOLDOWN,
                                           preferred_region=None) == (X1, "700")
        assert await select_extension_slot(s, caller_a=A1, now=NOW, cooldown=COOLDOWN,
                                           preferred_region=None, excluded=contested) == (
            X1, "720")
        assert await select_extension_slot(s, caller_a=A2, now=NOW, cooldown=COOLDOWN,
                                           preferred_region=None) == (X1, "300")


async def test_axb_allocation_never_takes_an_extension_number(database: Database,
                                                              cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None)], callers={("s1", A1): "approved"})
    await _extension_number(database, X1, 1)
    with pytest.raises(PoolExhausted):
        await _store(database, cipher, ModePolicy.AXB).issue("s1", "o1", "", A1, buyer(1), NOW,
                                                             actor="t")
    async with database.session() as s:
        assert await s.scalar(select(func.count()).select_from(CallerNumber)) == 1
