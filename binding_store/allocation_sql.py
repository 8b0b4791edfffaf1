"""Which X a new binding gets, as SQL: ``routing.allocation.choose_virtual_number`` run by the
database (tests check the two agree). Races are the caller's business: the partial unique
indexes decide them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from binding_store.models import Binding, PoolNumber
from routing.errors import CallerCoolingDown, PoolExhausted
from routing.model import BindingState, PoolState

ACTIVE = BindingState.ACTIVE.value
AXB = "axb"  # extension-mode numbers are allocated by binding_store.extension_store

# How many available numbers, in allocation order, are checked for (A, X) / (B, X) clashes
# and cool-down before the query falls back to the whole pool. Only a speed bound: the first
# eligible number of the window IS the first eligible number of the pool (same order), and when
# the window holds none the full query answers, so the choice is exactly the rule's.
CANDIDATE_WINDOW = 64


async def select_virtual_number(
    session: AsyncSession, *, caller_a: str, buyer_bidx: str, now: datetime,
    cooldown: timedelta, preferred_region: str | None, excluded: Collection[str] = (),
    window: int | None = -1,
) -> str | None:
    """``choose_virtual_number`` as SQL: an available X with no active (A, X) or (B, X)
    pair, not released from A within the cool-down; preferred region first, never-released
    next, then least recently released, then by number. Stale rows must be expired first.

    The clash checks (three correlated ``NOT EXISTS``, each an index probe) run on the first
    ``window`` available numbers in that order only (a top-N sort of the pool, then at most
    ``window`` probes of each) instead of on every pool row; the whole pool is searched only
    when none of the window is eligible. ``window=None``: the whole pool at once; -1:
    ``CANDIDATE_WINDOW``."""
    if window == -1:
        window = CANDIDATE_WINDOW
    if window is not None:
        found = await _first_eligible(session, caller_a, buyer_bidx, now, cooldown,
                                      preferred_region, excluded, window)
        if found is not None:
            return found
    return await _first_eligible(session, caller_a, buyer_bidx, now, cooldown,
                                 preferred_region, excluded, None)


async def _first_eligible(
    session: AsyncSession, caller_a: str, buyer_bidx: str, now: datetime,
    cooldown: timedelta, preferred_region: str | None, excluded: Collection[str],
    window: int | None,
) -> str | None:
    pool = PoolNumber
    region_rank: ColumnElement[Any] = (
        literal(0) if preferred_region is None
        else case((pool.region == preferred_region, 0), else_=1))
    never_rank = case((pool.last_released_at.is_(None), 0), else_=1)
    number = pool.number
    if session.get_bind().dialect.name == "postgresql":
        number = number.collate("C")  # type: ignore[assignment]
    available = select(pool.number.label("number"), region_rank.label("region_rank"),
                       never_rank.label("never_rank"),
                       pool.last_released_at.label("last_released_at"),
                       number.label("sort_number")).where(
        pool.state == PoolState.AVAILABLE.value, pool.mode == AXB)
    if excluded:
        available = available.where(pool.number.not_in(list(excluded)))
    if window is not None:
        available = available.order_by(region_rank, never_rank, pool.last_released_at,
                                       number).limit(window)
    cand = available.subquery("cand")
    # Two probes, each on an index of its pair: with one OR of the two, SQLite read every
    # active binding for each candidate (the state index), 3 000 rows per probe on a line
    # holding 3 000 numbers. On SQLite the state is compared as an expression, which no
    # index serves: without statistics its planner otherwise took the state index for a
    # probe whenever that index came first in the schema (the order create_all made them).
    state: ColumnElement[Any] = (Binding.state + "" if session.get_bind().dialect.name
                                 == "sqlite" else Binding.state.expression)
    a_busy = select(Binding.id).where(
        Binding.caller_a == caller_a, Binding.virtual_x == cand.c.number, state == ACTIVE)
    b_busy = select(Binding.id).where(
        Binding.buyer_bidx == buyer_bidx, Binding.virtual_x == cand.c.number,
        state == ACTIVE)
    cooling = select(Binding.id).where(
        Binding.caller_a == caller_a, Binding.virtual_x == cand.c.number,
        Binding.released_at.is_not(None), Binding.released_at > now - cooldown)
    query = (
        select(cand.c.number)
        .where(~exists(a_busy), ~exists(b_busy), ~exists(cooling))
        .order_by(cand.c.region_rank, cand.c.never_rank, cand.c.last_released_at,
                  cand.c.sort_number)
        .limit(1))
    found: str | None = (await session.execute(query)).scalar_one_or_none()
    return found


async def cooling_down_until(
    session: AsyncSession, *, caller_a: str, buyer_bidx: str, now: datetime,
    cooldown: timedelta, excluded: Collection[str] = (), switching: str | None = None,
) -> datetime | None:
    """``routing.allocation.cooling_down_until`` as SQL: when no X is eligible, the earliest
    moment an available number that only A's cool-down keeps from A is free again; ``None``
    when the cool-down holds back no number. Only run after the allocation found nothing.
    ``switching``: the binding whose caller is being switched (its own pair is not busy)."""
    mine, other = aliased(Binding), aliased(Binding)
    busy = select(other.id).where(
        other.state == ACTIVE, other.virtual_x == mine.virtual_x,
        or_(other.caller_a == caller_a, other.buyer_bidx == buyer_bidx))
    if switching is not None:
        busy = busy.where(other.id != switching)
    last = (select(func.max(mine.released_at).label("last"))
            .join(PoolNumber, PoolNumber.number == mine.virtual_x)
            .where(mine.caller_a == caller_a, mine.released_at.is_not(None),
                   mine.released_at > now - cooldown,
                   PoolNumber.state == PoolState.AVAILABLE.value, PoolNumber.mode == AXB,
                   ~exists(busy))
            .group_by(mine.virtual_x))
    if excluded:
        last = last.where(mine.virtual_x.not_in(list(excluded)))
    cooling = last.subquery("cooling")
    earliest: datetime | None = await session.scalar(select(func.min(cooling.c.last)))
    return None if earliest is None else earliest + cooldown


async def no_number_error(
    session: AsyncSession, *, shop_id: str, caller_a: str, buyer_bidx: str, now: datetime,
    cooldown: timedelta, excluded: Collection[str] = (), switching: str | None = None,
) -> PoolExhausted:
    """The refusal for an allocation that found no X: :class:`CallerCoolingDown` (with when
    the next number is free) if the caller's cool-down alone holds numbers back, else
    :class:`PoolExhausted`."""
    size = int(await session.scalar(select(func.count()).select_from(PoolNumber).where(
        PoolNumber.state == PoolState.AVAILABLE.value, PoolNumber.mode == AXB)) or 0)
    free_at = await cooling_down_until(session, caller_a=caller_a, buyer_bidx=buyer_bidx,
                                       now=now, cooldown=cooldown, excluded=excluded,
                                       switching=switching)
    if free_at is None:
        return PoolExhausted(shop_id, caller_a, size)
    return CallerCoolingDown(shop_id, caller_a, size, free_at, now)
