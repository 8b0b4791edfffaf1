from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from binding_store.db import Database
from binding_store.models import Account, AuditEvent, CallerNumber, Shop
from binding_store.shops import ShopRepository
from routing.errors import (
    Conflict,
    InvalidInput,
    InvalidNumber,
    NotFound,
    NotMobileNumber,
    ServiceNotEnabled,
)
from routing.model import CallerStatus, ServiceState
from tests.binding_store.shop_helpers import MAIN_PHONE, NOW


async def _count(db: Database, model: type, **where: object) -> int:
    query = select(func.count()).select_from(model)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    async with db.session() as s:
        return int(await s.scalar(query) or 0)


async def test_enable_records_agreement_and_creates_main_account_and_caller(
        database: Database) -> None:
    result = await ShopRepository(database).enable(
        "s1", now=NOW, main_account_id="boss", main_phone="+86 138-0013-8000",
        agreement_version="2023.1", accepted_by="boss", name="Tea Shop", level="l2")
    shop = result.shop
    assert result.changed
    assert shop.service_state is ServiceState.ENABLED and shop.enabled
    assert (shop.agreement_version, shop.accepted_by, shop.accepted_at) == ("2023.1", "boss", NOW)
    assert shop.accepted_at is not None and shop.accepted_at.tzinfo is not None
    assert (shop.name, shop.level, shop.main_account_id, shop.main_phone) == (
        "Tea Shop", "L2", "boss", MAIN_PHONE)
    async with database.session() as s:
        main = await s.get(Account, "boss")
        callers = (await s.scalars(select(CallerNumber))).all()
        events = (await s.scalars(select(AuditEvent))).all()
    assert main is not None and (main.role, main.phone, main.phone_reviewed) == (
        "main", MAIN_PHONE, True)
    assert [(c.number, c.status, c.is_main, c.account_id) for c in callers] == [
        (MAIN_PHONE, CallerStatus.APPROVED.value, True, "boss")]
    assert [(e.kind, e.actor, e.shop_id) for e in events] == [("shop.enabled", "boss", "s1")]
    assert json.loads(events[0].detail)["agreement_version"] == "2023.1"


async def test_enable_is_idempotent(database: Database) -> None:
    repo = ShopRepository(database)
    first = await repo.enable("s1", now=NOW, main_account_id="boss", main_phone=MAIN_PHONE,
                              agreement_version="2023.1")
    again = await repo.enable("s1", now=NOW + timedelta(hours=1), main_account_id="boss",
                              main_phone=MAIN_PHONE, agreement_version="2024.9")
    assert not again.changed
    assert again.shop == first.shop  # agreement and time of acceptance unchanged
    assert await _count(database, AuditEvent) == 1
    assert await _count(database, CallerNumber) == 1
    assert await _count(database, Account) == 1


async def test_concurrent_enables_create_one_shop(database: Database) -> None:
    repo = ShopRepository(database)
    results = await asyncio.gather(*(
        repo.enable("s1", now=NOW, main_account_id="boss", main_phone=MAIN_PHONE,
                    agreement_version="2023.1") for _ in range(5)))
    assert sum(r.changed for r in results) == 1
    assert {r.shop.main_account_id for r in results} == {"boss"}
    assert await _count(database, Shop) == 1
    assert await _count(database, CallerNumber, is_main=True) == 1
    assert await _count(database, AuditEvent, kind="shop.enabled") == 1


async def test_enable_with_another_main_account_is_refused(database: Database) -> None:
    repo = ShopRepository(database)
    await repo.enable("s1", now=NOW, main_account_id="boss", main_phone=MAIN_PHONE,
                      agreement_version="2023.1")
    with pytest.raises(Conflict, match="already has main account boss"):
        await repo.enable("s1", now=NOW, main_account_id="other", main_phone=MAIN_PHONE,
                          agreement_version="2023.1")


async def test_first_enable_needs_phone_agreement_and_valid_input(database: Database) -> None:
    repo = ShopRepository(database)
    with pytest.raises(InvalidInput, match="phone"):
        await repo.enable("s1", now=NOW, main_account_id="boss", agreement_version="v1")
    with pytest.raises(InvalidInput, match="agreement"):
        await repo.enable("s1", now=NOW, main_account_id="boss", main_phone=MAIN_PHONE)
    with pytest.raises(NotMobileNumber):
        await repo.enable("s1", now=NOW, main_account_id="boss", main_phone="010-12345678",
                          agreement_version="v1")
    with pytest.raises(InvalidNumber):
        await repo.enable("s1", now=NOW, main_account_id="boss", main_phone="12",
                          agreement_version="v1")
    with pytest.raises(InvalidInput, match="shop id"):
        await repo.enable("bad id", now=NOW, main_account_id="boss", main_phone=MAIN_PHONE,
                          agreement_version="v1")
    with pytest.raises(InvalidInput, match="level"):
        await repo.enable("s1", now=NOW, main_account_id="boss", main_phone=MAIN_PHONE,
                          agreement_version="v1", level="L9")
    assert await _count(database, Shop) == 0
    assert await _count(database, AuditEvent) == 0


async def test_disable_and_reenable_keep_agreement_and_are_audited(database: Database) -> None:
    repo = ShopRepository(database)
    await repo.enable("s1", now=NOW, main_account_id="boss", main_phone=MAIN_PHONE,
                      agreement_version="2023.1")
    later = NOW + timedelta(days=1)
    off = await repo.disable("s1", actor="ops", now=later)
    assert off.service_state is ServiceState.DISABLED and not off.enabled
    assert (await repo.disable("s1", actor="ops", now=later)).service_state is \
        ServiceState.DISABLED
    on = await repo.reenable("s1", actor="ops", now=later)
    assert on.enabled and on.agreement_version == "2023.1" and on.accepted_at == NOW
    await repo.disable("s1", actor="ops", now=later)
    # 'enable' on a disabled shop switches it back on (the CLI's re-enable).
    result = await repo.enable("s1", now=later, main_account_id="boss")
    assert result.changed and result.shop.enabled
    async with database.session() as s:
        kinds = (await s.scalars(select(AuditEvent.kind).order_by(AuditEvent.id))).all()
    assert kinds == ["shop.enabled", "shop.disabled", "shop.reenabled", "shop.disabled",
                     "shop.reenabled"]


async def test_disable_unknown_or_never_enabled(database: Database) -> None:
    repo = ShopRepository(database)
    with pytest.raises(NotFound):
        await repo.disable("nope", actor="ops", now=NOW)
    with pytest.raises(NotFound):
        await repo.get("nope")
    async with database.session() as s:
        s.add(Shop(id="s0", name="", created_at=NOW, updated_at=NOW))
        await s.commit()
    with pytest.raises(ServiceNotEnabled):
        await repo.disable("s0", actor="ops", now=NOW)
    with pytest.raises(ServiceNotEnabled):
        await repo.reenable("s0", actor="ops", now=NOW)


async def test_a_not_enabled_shop_row_can_be_enabled(database: Database) -> None:
    async with database.session() as s:
        s.add(Shop(id="s0", name="Known", level="L3", created_at=NOW, updated_at=NOW))
        await s.commit()
    shop = (await ShopRepository(database).enable(
        "s0", now=NOW, main_account_id="m0", main_phone=MAIN_PHONE,
        agreement_version="v1")).shop
    assert shop.enabled and (shop.name, shop.level, shop.created_at) == ("Known", "L3", NOW)


async def test_set_level_validates_and_audits(database: Database) -> None:
    repo = ShopRepository(database)
    await repo.enable("s1", now=NOW, main_account_id="boss", main_phone=MAIN_PHONE,
                      agreement_version="v1")
    assert (await repo.set_level("s1", "l0", actor="ops", now=NOW)).level == "L0"
    assert (await repo.set_level("s1", "L0", actor="ops", now=NOW)).level == "L0"
    with pytest.raises(InvalidInput):
        await repo.set_level("s1", "gold", actor="ops", now=NOW)
    with pytest.raises(NotFound):
        await repo.set_level("nope", "L1", actor="ops", now=NOW)
    async with database.session() as s:
        levels = (await s.scalars(select(AuditEvent.detail).where(
            AuditEvent.kind == "shop.level"))).all()
    assert [json.loads(d) for d in levels] == [{"from": "L1", "to": "L0"}]
    assert [s.level for s in await repo.all()] == ["L0"]


async def test_database_refuses_a_second_main_account(database: Database) -> None:
    await ShopRepository(database).enable("s1", now=NOW, main_account_id="boss",
                                          main_phone=MAIN_PHONE, agreement_version="v1")
    with pytest.raises(IntegrityError):
        async with database.session() as s:
            s.add(Account(id="boss2", shop_id="s1", role="main", created_at=NOW))
            await s.commit()
    async with database.session() as s:  # sub-accounts are not limited
        s.add(Account(id="a", shop_id="s1", role="sub", created_at=NOW))
        s.add(Account(id="b", shop_id="s1", role="sub", created_at=NOW))
        await s.commit()
