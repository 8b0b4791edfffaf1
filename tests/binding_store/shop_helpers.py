"""Helpers for the shop/caller/pool/migration tests (no tests here)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from binding_store.accounts import AccountRepository
from binding_store.db import Database
from binding_store.shops import ShopRepository
from routing.shop_views import ShopView
from tests.pg import scratch_database

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
MAIN_PHONE = "+8613800138000"
SUB_REVIEWED = "+8613900139001"
SUB_UNREVIEWED = "+8613900139002"


async def enabled_shop(db: Database, shop_id: str = "s1", *, subs: bool = True) -> ShopView:
    """Shop ``shop_id`` enabled with main account ``<shop>-main`` and, if ``subs``, two
    sub-accounts: ``<shop>-sub1`` (reviewed) and ``<shop>-sub2`` (not reviewed)."""
    main = f"{shop_id}-main"
    result = await ShopRepository(db).enable(
        shop_id, now=NOW, main_account_id=main, main_phone=MAIN_PHONE if shop_id == "s1"
        else f"+86137{int.from_bytes(shop_id.encode()) % 10**8:08d}", agreement_version="2023.1")
    if subs:
        accounts = AccountRepository(db)
        await accounts.add_sub_account(shop_id, f"{shop_id}-sub1", actor=main, now=NOW,
                                       phone=SUB_REVIEWED if shop_id == "s1"
                                       else "+8613600136001", phone_reviewed=True)
        await accounts.add_sub_account(shop_id, f"{shop_id}-sub2", actor=main, now=NOW,
                                       phone=SUB_UNREVIEWED if shop_id == "s1"
                                       else "+8613600136002", phone_reviewed=False)
    return result.shop


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A brand-new, empty PostgreSQL database for this test only (dropped afterwards)."""
    with scratch_database("m") as url:
        yield url
