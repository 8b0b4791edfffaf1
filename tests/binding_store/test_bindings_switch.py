"""Switching the caller at confirm-dial: one atomic step that keeps X when it can."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.models import Binding
from routing.errors import CallerCoolingDown, CallerNotApproved, Conflict, PoolExhausted
from routing.model import BindingState
from tests.binding_store.test_bindings_helpers import (
    A1,
    A2,
    A3,
    B1,
    B2,
    B3,
    COOLDOWN,
    NOW,
    X1,
    X2,
    seed,
    store,
)


async def _active(db: Database) -> list[tuple[str, str, str]]:
    async with db.session() as s:
        rows = (await s.execute(select(Binding).where(Binding.state == "active"))).scalars()
        return sorted((r.order_id, r.caller_a, r.virtual_x) for r in rows)


async def test_switch_keeps_x_when_the_pair_is_free(database: Database,
                                                    cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None), (X2, "", None)])
    bindings = store(database, cipher)
    issued = await bindings.issue("s1", "o1", "b", A1, B1, NOW, actor="t")
    later = NOW + timedelta(minutes=3)
    result = await bindings.switch_caller(issued.binding_id, "138-0000-0002", actor="t",
                                          now=later)
    assert not result.x_changed
    assert result.binding.virtual_x == X1 and result.binding.caller_a == A2
    assert result.binding.expires_at == issued.expires_at  # validity is not extended
    assert result.previous.state is BindingState.RELEASED
    assert result.binding.binding_id != issued.binding_id
    assert await _active(database) == [("o1", A2, X1)]
    # The order's binding is now the switched one.
    assert (await bindings.issue("s1", "o1", "b", A1, B1, later, actor="t")).binding_id \
        == result.binding.binding_id


async def test_switch_moves_x_when_the_new_caller_holds_it(database: Database,
                                                           cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None), (X2, "", None)])
    bindings = store(database, cipher)
    mine = await bindings.issue("s1", "o1", "", A1, B1, NOW, actor="t")
    await bindings.issue("s1", "o2", "", A2, B2, NOW, actor="t")  # (A2, X1)
    result = await bindings.switch_caller(mine.binding_id, A2, actor="t", now=NOW)
    assert result.x_changed and result.binding.virtual_x == X2
    assert await _active(database) == [("o1", A2, X2), ("o2", A2, X1)]


async def test_switch_moves_x_when_the_new_caller_is_cooling_down(
        database: Database, cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "BJ", None), (X2, "SH", None)])
    bindings = store(database, cipher)
    earlier = await bindings.issue("s1", "o0", "", A2, B3, NOW, preferred_region="BJ", actor="t")
    await bindings.release(earlier.binding_id, actor="t", now=NOW)  # A2 cools down on X1
    mine = await bindings.issue("s1", "o1", "", A1, B1, NOW, preferred_region="BJ", actor="t")
    assert mine.virtual_x == X1
    result = await bindings.switch_caller(mine.binding_id, A2, actor="t", now=NOW)
    assert result.x_changed and result.binding.virtual_x == X2


async def test_switch_refusals_leave_the_binding_untouched(database: Database,
                                                           cipher: BuyerCipher) -> None:
    await seed(database, callers={("s1", A1): "approved", ("s1", A2): "approved",
                                  ("s1", A3): "disabled"}, pool=[(X1, "", None)])
    bindings = store(database, cipher)
    mine = await bindings.issue("s1", "o1", "", A1, B1, NOW, actor="t")
    await bindings.issue("s1", "o2", "", A2, B2, NOW, actor="t")  # (A2, X1) taken
    with pytest.raises(CallerNotApproved):
        await bindings.switch_caller(mine.binding_id, A3, actor="t", now=NOW)
    with pytest.raises(PoolExhausted):
        await bindings.switch_caller(mine.binding_id, A2, actor="t", now=NOW)
    assert await _active(database) == [("o1", A1, X1), ("o2", A2, X1)]
    with pytest.raises(Conflict):
        await bindings.switch_caller(mine.binding_id, A2, actor="t",
                                     now=mine.expires_at)  # expired
    same = await bindings.switch_caller(mine.binding_id, A1, actor="t", now=NOW)
    assert same.binding.binding_id == mine.binding_id and not same.x_changed


async def test_switch_to_a_caller_cooling_on_every_number_says_when(
        database: Database, cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher)
    earlier = await bindings.issue("s1", "o0", "", A2, B3, NOW, actor="t")
    await bindings.release(earlier.binding_id, actor="t", now=NOW)  # A2 cools down on X1
    mine = await bindings.issue("s1", "o1", "", A1, B1, NOW, actor="t")
    with pytest.raises(CallerCoolingDown) as caught:
        await bindings.switch_caller(mine.binding_id, A2, actor="t",
                                     now=NOW + timedelta(minutes=10))
    assert caught.value.free_at == NOW + COOLDOWN
    assert caught.value.retry_after_seconds == int((COOLDOWN - timedelta(minutes=10))
                                                   .total_seconds())
    assert await _active(database) == [("o1", A1, X1)]  # nothing changed
