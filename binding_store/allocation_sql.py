"""Which X a new binding gets, as SQL: ``routing.allocation.choose_virtual_number`` run by the
database (tests check the two agree). Races are the caller's business: the partial unique
indexes decide them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, exists, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store.models import Binding, PoolNumber
from routing.model import BindingState, PoolState

ACTIVE = BindingState.ACTIVE.value

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

    The clash checks (two correlated ``NOT EXISTS``) run on the first ``window`` available
    numbers in that order only (a top-N sort of the pool, then at most ``window`` index
    probes each) instead of on every pool row; the whole pool is searched only when none of
    the window is eligible. ``window=None``: the whole pool at once; -1: ``CANDIDATE_WINDOW``."""
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
        pool.state == PoolState.AVAILABLE.value)
    if excluded:
        available = available.where(pool.number.not_in(list(excluded)))
    if window is not None:
        available = available.order_by(region_rank, never_rank, pool.last_released_at,
                                       number).limit(window)
    cand = available.subquery("cand")
    busy = select(Binding.id).where(
        Binding.state == ACTIVE, Binding.virtual_x == cand.c.number,
        or_(Binding.caller_a == caller_a, Binding.buyer_bidx == buyer_bidx))
    cooling = select(Binding.id).where(
        Binding.caller_a == caller_a, Binding.virtual_x == cand.c.number,
        Binding.released_at.is_not(None), Binding.released_at > now - cooldown)
    query = (
        select(cand.c.number)
        .where(~exists(busy), ~exists(cooling))
        .order_by(cand.c.region_rank, cand.c.never_rank, cand.c.last_released_at,
                  cand.c.sort_number)
        .limit(1))
    found: str | None = (await session.execute(query)).scalar_one_or_none()
    return found
