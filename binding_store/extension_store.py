"""Extension mode in SQL: a pool number's mode, its (X, extension) slots, and which slot a new
binding gets (``routing.extensions.choose_extension_slot`` run by the database; tests check
the two agree).

Concurrency: on PostgreSQL the chosen slot row is locked with ``FOR UPDATE SKIP LOCKED``, so
allocators running at once take different slots instead of racing for the first free one;
the partial unique index ``uq_active_x_extension`` on the bindings is what makes a double
holding impossible whatever happens (a loser is retried by the caller without that slot).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta

from sqlalchemy import (
    delete,
    exists,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from binding_store import audit
from binding_store.db import Database
from binding_store.extension_models import NEVER, PoolExtension
from binding_store.models import Binding, PoolNumber
from routing.audit import AuditKind
from routing.errors import Conflict, InvalidInput, NotFound
from routing.extensions import NumberMode, check_extension_length, extensions_of
from routing.model import BindingState, PoolState

ACTIVE = BindingState.ACTIVE.value
_INSERT_BATCH = 2_000
# Free slots read per step of the allocation's search: the first window is what a normal
# allocation needs (a few slots another allocation is taking, a few A is cooling down on);
# each further one is four times larger, up to the last size.
_FIRST_WINDOW = 16
_LAST_WINDOW = 4_096


def slot_key(x: str, extension: str) -> str:
    """How a contested slot is named in the retry loop's exclusion set (no X contains '#')."""
    return f"{x}#{extension}"


def _excluded_slots(excluded: Collection[str]) -> list[tuple[str, str]]:
    return [(k.split("#", 1)[0], k.split("#", 1)[1]) for k in excluded if "#" in k]


async def select_extension_slot(
    session: AsyncSession, *, caller_a: str, now: datetime, cooldown: timedelta,
    preferred_region: str | None, excluded: Collection[str] = (),
) -> tuple[str, str] | None:
    """The first free slot of an available extension-mode X in the rule's order whose last
    release from ``caller_a`` (if any) is at least ``cooldown`` ago; locked on PostgreSQL
    (``SKIP LOCKED``: a slot another allocation is taking is passed over).

    Searched window by window in the order of ``ix_pool_extensions_free``: a few free slots
    at a time (then more); one statement reads a window, checks A's cool-down on its slots
    and locks the first good one. One statement joining every free slot to the check let
    the planner read and sort an X's whole extension space (10,000 slots: ~80 ms and growing
    with the pool); a window costs the same however large the pool is, and the answer is the
    same slot, since windows follow the rule's order exactly."""
    numbers = (await session.execute(
        select(PoolNumber.number, PoolNumber.region).where(
            PoolNumber.state == PoolState.AVAILABLE.value,
            PoolNumber.mode == NumberMode.EXTENSION.value))).all()
    if not numbers:
        return None
    # Preferred region first (all of it), then the rest: the rule's order.
    groups = [[r.number for r in numbers]]
    if preferred_region is not None:
        groups = [[r.number for r in numbers if r.region == preferred_region],
                  [r.number for r in numbers if r.region != preferred_region]]
    skip = set(_excluded_slots(excluded))
    postgres = session.get_bind().dialect.name == "postgresql"
    for group in groups:
        if group:
            slot = await _first_in_windows(session, group, caller_a, now - cooldown, skip,
                                           postgres)
            if slot is not None:
                return slot
    return None


async def _first_in_windows(session: AsyncSession, numbers: list[str], caller_a: str,
                            cooled_before: datetime, skip: set[tuple[str, str]],
                            postgres: bool) -> tuple[str, str] | None:
    slot, free = PoolExtension, aliased(PoolExtension)
    after: tuple[datetime, str, str] | None = None
    size = _FIRST_WINDOW
    while True:
        # The window: only the free-slot index, walked in its order with no join, so the
        # database reads ``size`` entries and stops (a LIMIT in a subquery is applied first).
        window = (select(free.number, free.extension)
                  .where(free.held_by.is_(None), free.number.in_(numbers))
                  .order_by(free.last_released_at, free.number, free.extension)
                  .limit(size))
        if after is not None:
            window = window.where(tuple_(free.last_released_at, free.number, free.extension)
                                  > tuple_(*after))
        cooling = select(Binding.id).where(
            Binding.caller_a == caller_a, Binding.virtual_x == slot.number,
            Binding.extension == slot.extension, Binding.extension != "",
            Binding.released_at.is_not(None), Binding.released_at > cooled_before)
        # In the same statement: the window's first slot A is not cooling down on, locked
        # (another allocation may hold or be taking some: SKIP LOCKED passes over them; a
        # locked row is re-checked against the conditions).
        pick = (select(slot.number, slot.extension)
                .where(tuple_(slot.number, slot.extension).in_(window),
                       slot.held_by.is_(None), ~exists(cooling))
                .order_by(slot.last_released_at, slot.number, slot.extension))
        if skip:
            pick = pick.where(tuple_(slot.number, slot.extension).not_in(list(skip)))
        pick = pick.limit(1)
        if postgres:
            pick = pick.with_for_update(of=slot, skip_locked=True)
        row = (await session.execute(pick)).first()
        if row is not None:
            return row.number, row.extension
        # Nothing good in this window (rare): the next one, if there is one.
        keys = (await session.execute(
            select(free.last_released_at, free.number, free.extension)
            .where(tuple_(free.number, free.extension).in_(window))
            .order_by(free.last_released_at.desc(), free.number.desc(),
                      free.extension.desc()))).all()
        if len(keys) < size:
            return None
        after = (keys[0].last_released_at, keys[0].number, keys[0].extension)
        size = min(size * 4, _LAST_WINDOW)


async def hold(session: AsyncSession, x: str, extension: str, binding_id: str) -> None:
    await session.execute(
        update(PoolExtension)
        .where(PoolExtension.number == x, PoolExtension.extension == extension)
        .values(held_by=binding_id)
        .execution_options(synchronize_session=False))


async def release_slots(session: AsyncSession, ended: Iterable[tuple[str, str, str, datetime]]
                        ) -> None:
    """Free the slots of ended extension bindings ``(binding id, X, extension, released at)``;
    a slot another binding holds by now is left alone."""
    for binding_id, x, extension, at in sorted(ended, key=lambda e: (e[1], e[2])):
        await session.execute(
            update(PoolExtension)
            .where(PoolExtension.number == x, PoolExtension.extension == extension,
                   PoolExtension.held_by == binding_id)
            .values(held_by=None, last_released_at=at)
            .execution_options(synchronize_session=False))


async def pair_cooling(session: AsyncSession, caller_a: str, x: str, extension: str,
                       now: datetime, cooldown: timedelta) -> bool:
    """A released (X, extension) from ``caller_a`` within the cool-down."""
    found = await session.scalar(select(func.count()).select_from(Binding).where(
        Binding.caller_a == caller_a, Binding.virtual_x == x, Binding.extension == extension,
        Binding.released_at.is_not(None), Binding.released_at > now - cooldown))
    return bool(found)


class ExtensionPool:
    """Operator side: put a pool number into extension mode (creating its slots) or back."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def set_mode(self, number: str, mode: NumberMode, length: int | None, *, actor: str,
                       now: datetime) -> tuple[NumberMode, int | None]:
        """Change X's mode. Refused while X has an active binding (its callers would reach
        the wrong party after the change)."""
        if mode is NumberMode.EXTENSION:
            if length is None:
                raise InvalidInput("extension mode needs an extension length (1-4)")
            try:
                check_extension_length(length)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
        else:
            length = None
        async with self._db.session() as s:
            row = await s.get(PoolNumber, number, with_for_update=True)
            if row is None:
                raise NotFound(f"{number} is not in the virtual-number pool")
            if row.mode == mode.value and row.extension_length == length:
                return mode, length
            busy = await s.scalar(select(func.count()).select_from(Binding).where(
                Binding.virtual_x == number, Binding.state == ACTIVE, Binding.expires_at > now))
            if busy:
                raise Conflict(f"{number} has {busy} active binding(s); change its mode once "
                               "they have ended")
            audit.record(s, now=now, actor=actor, kind=AuditKind.POOL_STATE, subject=number,
                         detail={"mode": mode.value, "extension_length": length})
            row.mode, row.extension_length = mode.value, length
            await s.execute(delete(PoolExtension).where(PoolExtension.number == number))
            if length is not None:
                values = [{"number": number, "extension": e, "held_by": None,
                           "last_released_at": NEVER} for e in extensions_of(length)]
                for start in range(0, len(values), _INSERT_BATCH):
                    await s.execute(insert(PoolExtension), values[start:start + _INSERT_BATCH])
            await s.commit()
        return mode, length

    async def modes(self) -> dict[str, int]:
        """Every available extension-mode X (E.164) with its extension length."""
        async with self._db.session() as s:
            rows = (await s.execute(select(PoolNumber.number, PoolNumber.extension_length).where(
                PoolNumber.mode == NumberMode.EXTENSION.value,
                PoolNumber.state != PoolState.RETIRED.value))).all()
        return {r.number: int(r.extension_length or 0) for r in rows}
