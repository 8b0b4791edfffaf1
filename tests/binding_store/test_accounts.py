from __future__ import annotations

import pytest

from binding_store.accounts import AccountRepository
from binding_store.audit import AuditLog
from binding_store.db import Database
from routing.errors import (
    Conflict,
    InvalidInput,
    InvalidNumber,
    NotFound,
    PermissionDenied,
    ServiceNotEnabled,
)
from routing.model import AccountRole
from tests.binding_store.shop_helpers import MAIN_PHONE, NOW, enabled_shop


async def test_main_account_adds_sub_accounts(database: Database) -> None:
    await enabled_shop(database, subs=False)
    repo = AccountRepository(database)
    added = await repo.add_sub_account("s1", "clerk", actor="s1-main", now=NOW,
                                       phone="139 0013 9000", name="Clerk", phone_reviewed=True)
    assert (added.role, added.phone, added.phone_reviewed, added.shop_id) == (
        AccountRole.SUB, "+8613900139000", True, "s1")
    await repo.add_sub_account("s1", "a-first", actor="s1-main", now=NOW)
    listed = await repo.list_accounts("s1")
    assert [(a.id, a.role) for a in listed] == [
        ("s1-main", AccountRole.MAIN), ("a-first", AccountRole.SUB), ("clerk", AccountRole.SUB)]
    assert listed[0].phone == MAIN_PHONE
    assert await repo.get("clerk") == added
    events = await AuditLog(database).events(shop_id="s1", kind="account.added")
    assert [e.subject for e in events] == ["a-first", "clerk"]


async def test_only_the_main_account_maintains_sub_accounts(database: Database) -> None:
    await enabled_shop(database)
    await enabled_shop(database, "s2", subs=False)
    repo = AccountRepository(database)
    with pytest.raises(PermissionDenied):
        await repo.add_sub_account("s1", "x", actor="s1-sub1", now=NOW)
    with pytest.raises(PermissionDenied):  # another shop's admin
        await repo.add_sub_account("s1", "x", actor="s2-main", now=NOW)
    with pytest.raises(NotFound):
        await repo.add_sub_account("nope", "x", actor="s1-main", now=NOW)
    with pytest.raises(NotFound):
        await repo.get("x")


async def test_sub_account_needs_an_enabled_shop(database: Database) -> None:
    from binding_store.models import Shop

    async with database.session() as s:
        s.add(Shop(id="s0", created_at=NOW, updated_at=NOW))
        await s.commit()
    with pytest.raises(ServiceNotEnabled):
        await AccountRepository(database).add_sub_account("s0", "x", actor="m", now=NOW)


async def test_bad_sub_account_input(database: Database) -> None:
    await enabled_shop(database)
    repo = AccountRepository(database)
    with pytest.raises(Conflict):
        await repo.add_sub_account("s1", "s1-sub1", actor="s1-main", now=NOW)
    with pytest.raises(Conflict):  # ids are global: the main account's id is taken too
        await repo.add_sub_account("s1", "s1-main", actor="s1-main", now=NOW)
    with pytest.raises(InvalidNumber):
        await repo.add_sub_account("s1", "y", actor="s1-main", now=NOW, phone="12ab")
    with pytest.raises(InvalidInput):
        await repo.add_sub_account("s1", "with space", actor="s1-main", now=NOW)
    assert len(await repo.list_accounts("s1")) == 3


async def test_review_flag_is_recorded_and_audited(database: Database) -> None:
    await enabled_shop(database)
    repo = AccountRepository(database)
    assert (await repo.set_phone_reviewed("s1-sub2", True, actor="platform", now=NOW)
            ).phone_reviewed
    assert (await repo.get("s1-sub2")).phone_reviewed
    assert not (await repo.set_phone_reviewed("s1-sub2", False, actor="platform", now=NOW)
                ).phone_reviewed
    events = await AuditLog(database).events(kind="account.reviewed")
    assert [e.detail for e in events] == [{"phone_reviewed": False}, {"phone_reviewed": True}]
    with pytest.raises(NotFound):
        await repo.set_phone_reviewed("ghost", True, actor="platform", now=NOW)
