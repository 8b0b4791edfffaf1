"""AXB bindings: issue, switch caller, release, expire. The database decides races.

The virtual number X is chosen by one SQL query (``binding_store.allocation_sql``) implementing
``routing.allocation.choose_virtual_number``; the partial unique indexes ``uq_active_ax``,
``uq_active_bx`` and ``uq_active_order`` make the rules hold under concurrency. A transaction
that loses a race (IntegrityError) is rolled back and run again, a bounded number of times,
with the contested X excluded; losing the order race returns the winner's binding.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store import audit, watermark
from binding_store.allocation_sql import no_number_error, select_virtual_number
from binding_store.batched_issue import BatchedIssuer
from binding_store.binding_checks import (
    issue_checks,
    load_for_update,
    require_caller,
    require_shop,
)
from binding_store.binding_policy import BindingPolicy, IssueStats
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.extension_store import (
    hold,
    pair_cooling,
    release_slots,
    select_extension_slot,
    slot_key,
)
from binding_store.index_publisher import IndexPublisher
from binding_store.issue_requests import IssueInput
from binding_store.models import Binding, PoolNumber
from binding_store.outbox import Outbox
from binding_store.redis_index import IndexEntry, RedisIndex
from routing.allocation import binding_ttl
from routing.audit import AuditKind
from routing.binding_views import BindingView, SwitchedBinding
from routing.errors import Conflict, InvalidBindingRequest, NotFound, StoreUnavailable
from routing.events import (
    Event,
    binding_created,
    binding_expired,
    binding_released,
    binding_switched,
)
from routing.extensions import ModePolicy, NumberMode, modes_to_try
from routing.model import BindingState
from routing.number_memo import NumberMemo
from routing.numbers import mask, normalize

log = logging.getLogger(__name__)
T = TypeVar("T")
ACTIVE = BindingState.ACTIVE.value
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure
_EVENT_COLUMNS = (Binding.id, Binding.shop_id, Binding.order_id, Binding.buyer_id,
                  Binding.caller_a, Binding.virtual_x, Binding.buyer_masked, Binding.created_at,
                  Binding.expires_at, Binding.extension)


class _Lost(Exception):
    """This transaction lost a race on ``x``; run it again without it."""

    def __init__(self, x: str) -> None:
        super().__init__(x)
        self.x = x


class BindingStore:
    """Implements ``routing.ports.BindingService`` on the SQL store (+ optional Redis index)."""

    def __init__(self, database: Database, cipher: BuyerCipher, *,
                 policy: BindingPolicy | None = None, index: RedisIndex | None = None,
                 outbox: Outbox | None = None) -> None:
        self._db = database
        self._cipher = cipher
        self._policy = policy or BindingPolicy()
        # Events (binding.created|switched|released|expired) go into each change's own
        # transaction; without an outbox none are written.
        self._outbox = outbox or Outbox(enabled=False)
        self.stats = IssueStats()
        # Shops' caller numbers (A) repeat on every issue: their E.164 form is remembered.
        # Buyers' numbers are parsed every time and never remembered.
        self._callers = NumberMemo(partial(normalize, region=self._policy.number_region),
                                   4096)
        self._published = IndexPublisher(database, index)
        # PostgreSQL issues bindings in batches, one statement each (group commit); SQLite
        # takes the ORM path below, the same rules at its own speed.
        self._batcher: BatchedIssuer | None = None
        if database.dialect == "postgresql" and self._policy.group_commit:
            self._batcher = BatchedIssuer(database, self._policy, self._published, self.stats,
                                          with_event=self._outbox.enabled)

    @property
    def batches(self) -> int:
        """Statements the group-commit writer has sent (0 on SQLite)."""
        return 0 if self._batcher is None else self._batcher.batches

    # -- issue ----------------------------------------------------------------------------
    async def issue(
        self, shop_id: str, order_id: str, buyer_id: str, caller_a: str, buyer_number: str,
        now: datetime, ttl: timedelta | None = None, preferred_region: str | None = None,
        *, actor: str, mode: NumberMode | None = None,
    ) -> BindingView:
        a = self._callers.get(caller_a)
        b = normalize(buyer_number, self._policy.number_region)
        try:
            validity = binding_ttl(ttl, self._policy.default_ttl)
        except ValueError as exc:
            raise InvalidBindingRequest(str(exc)) from None
        bidx = self._cipher.blind_index(b)
        policy_mode = self._policy.mode_policy
        axb_first = (mode is NumberMode.AXB if mode is not None else policy_mode in (
            ModePolicy.AXB, ModePolicy.AXB_THEN_EXTENSION))
        if self._batcher is not None and axb_first:
            # The batched path allocates AXB numbers only; an exhausted AXB pool falls through
            # to the ORM path when the policy lets extensions take the overflow.
            overflow = mode is None and policy_mode is ModePolicy.AXB_THEN_EXTENSION
            view = await self._batcher.issue(IssueInput(
                shop_id=shop_id, order_id=order_id, buyer_id=buyer_id, caller_a=a,
                buyer_cipher=self._cipher.encrypt(b), buyer_bidx=bidx, buyer_masked=mask(b),
                now=now, validity=validity, preferred_region=preferred_region, actor=actor),
                overflow=overflow)
            if view is not None:
                return view

        async def work(s: AsyncSession, excluded: set[str]) -> tuple[BindingView, Binding | None]:
            await self._expire_stale(s, now, or_(
                Binding.caller_a == a, Binding.buyer_bidx == bidx,
                and_(Binding.shop_id == shop_id, Binding.order_id == order_id)))
            existing = await issue_checks(s, shop_id, a, order_id)
            if existing is not None:
                return existing.view(now), None
            picked = await self._allocate(s, a, bidx, now, preferred_region, excluded, mode)
            if picked is None:
                raise await no_number_error(
                    s, shop_id=shop_id, caller_a=a, buyer_bidx=bidx, now=now,
                    cooldown=self._policy.cooldown, excluded=excluded)
            x, ext = picked
            row = Binding(id=uuid.uuid4().hex, shop_id=shop_id, order_id=order_id,
                          buyer_id=buyer_id, caller_a=a, virtual_x=x, extension=ext,
                          buyer_cipher=self._cipher.encrypt(b), buyer_bidx=bidx,
                          buyer_masked=mask(b), created_at=now, expires_at=now + validity,
                          released_at=None, state=ACTIVE)
            s.add(row)
            if ext:
                await hold(s, x, ext, row.id)
            audit.record(s, now=now, actor=actor, kind=AuditKind.BINDING_CREATED,
                         shop_id=shop_id, subject=row.id, detail={
                             "order": order_id, "caller_a": a, "virtual_x": x,
                             **({"extension": ext} if ext else {}),
                             "buyer": row.buyer_masked, "expires_at": row.expires_at})
            await _flush_or_lost(s, slot_key(x, ext) if ext else x)
            view = row.view(now, created=True)
            await self._outbox.write(s, [binding_created(view)], now)
            return view, row

        result, row = await self._transact(work)
        if row is None:
            self.stats.repeated += 1
        else:
            self.stats.issued += 1
            if not row.extension:  # extension bindings are never indexed
                await self._published.created(IndexEntry.of(row), now)
        return result

    # -- switch caller --------------------------------------------------------------------
    async def switch_caller(self, binding_id: str, new_caller: str, *, actor: str,
                            now: datetime) -> SwitchedBinding:
        a2 = normalize(new_caller, self._policy.number_region)

        async def work(s: AsyncSession, excluded: set[str]
                       ) -> tuple[SwitchedBinding, Binding | None, IndexEntry | None, int]:
            old = await load_for_update(s, binding_id)
            if old.state != ACTIVE or now >= old.expires_at:
                state = old.view(now).state.value
                raise Conflict(f"binding {binding_id} is {state}; issue a new one for the order")
            await require_shop(s, old.shop_id)
            await require_caller(s, old.shop_id, a2)
            if a2 == old.caller_a:
                same = old.view(now)
                return (SwitchedBinding(binding=same, previous=same, x_changed=False), None, None,
                        0)
            await self._expire_stale(s, now, Binding.caller_a == a2)
            if old.extension:
                picked = await self._switch_slot(s, old, a2, now, excluded)
            else:
                x0: str | None = old.virtual_x
                if x0 in excluded or not await self._pair_free(s, a2, old.virtual_x, now):
                    x0 = await select_virtual_number(
                        s, caller_a=a2, buyer_bidx=old.buyer_bidx, now=now,
                        cooldown=self._policy.cooldown, preferred_region=None,
                        excluded=excluded)
                picked = None if x0 is None else (x0, "")
            if picked is None:
                raise await no_number_error(
                    s, shop_id=old.shop_id, caller_a=a2, buyer_bidx=old.buyer_bidx, now=now,
                    cooldown=self._policy.cooldown, excluded=excluded, switching=old.id)
            x, ext = picked
            gone = IndexEntry.of(old)
            old.state = BindingState.RELEASED.value
            old.released_at = now
            await s.flush()  # the old row leaves the partial indexes before the new one enters
            new = Binding(id=uuid.uuid4().hex, shop_id=old.shop_id, order_id=old.order_id,
                          buyer_id=old.buyer_id, caller_a=a2, virtual_x=x, extension=ext,
                          buyer_cipher=old.buyer_cipher, buyer_bidx=old.buyer_bidx,
                          buyer_masked=old.buyer_masked, created_at=now,
                          expires_at=old.expires_at, released_at=None, state=ACTIVE)
            s.add(new)
            moved = (x, ext) != (old.virtual_x, old.extension)
            if old.extension:
                await release_slots(s, [(old.id, old.virtual_x, old.extension, now)])
            elif moved:
                await _mark_released(s, {old.virtual_x: now})
            if ext:
                await hold(s, x, ext, new.id)
            audit.record(s, now=now, actor=actor, kind=AuditKind.BINDING_SWITCHED,
                         shop_id=old.shop_id, subject=new.id, detail={
                             "order": old.order_id, "previous": old.id,
                             "from_caller": old.caller_a, "to_caller": a2,
                             "from_x": old.virtual_x, "to_x": x, "moved": moved,
                             **({"from_extension": old.extension, "to_extension": ext}
                                if old.extension or ext else {})})
            await _flush_or_lost(s, slot_key(x, ext) if ext else x)
            await self._published.ended(gone, now=now, strict=True)
            version = await watermark.bump(s)
            result = SwitchedBinding(binding=new.view(now), previous=old.view(now),
                                     x_changed=moved)
            await self._outbox.write(
                s, [binding_switched(result.binding, result.previous, at=now)], now)
            return result, new, gone, version

        result, new, gone, version = await self._transact(work)
        if gone is not None:
            await self._published.ended(gone, now=now, strict=False, version=version)
        if new is not None and not new.extension:  # extension bindings are never indexed
            await self._published.created(IndexEntry.of(new), now)
        return result

    # -- release, expiry, reads -------------------------------------------------------------
    async def release(self, binding_id: str, *, actor: str, now: datetime) -> BindingView:
        async with self._db.write_session() as s:
            row = await load_for_update(s, binding_id)
            if row.state != ACTIVE:
                return row.view(now)
            entry = IndexEntry.of(row)
            event: Event
            if now >= row.expires_at:
                row.state, row.released_at = BindingState.EXPIRED.value, row.expires_at
                await _released(s, row, row.expires_at)
                event = binding_expired(row.view(now))
            else:
                row.state, row.released_at = BindingState.RELEASED.value, now
                await _released(s, row, now)
                audit.record(s, now=now, actor=actor, kind=AuditKind.BINDING_RELEASED,
                             shop_id=row.shop_id, subject=row.id, detail={
                                 "order": row.order_id, "caller_a": row.caller_a,
                                 "virtual_x": row.virtual_x})
                event = binding_released(row.view(now), at=now)
            await s.flush()
            await self._outbox.write(s, [event], now)
            await self._published.ended(entry, now=now, strict=True)
            version = await watermark.bump(s)
            await s.commit()
        await self._published.ended(entry, now=now, strict=False, version=version)
        return row.view(now)

    async def expire_due(self, now: datetime, limit: int = 1000) -> int:
        """Mark up to ``limit`` bindings whose expiry has passed as expired (with their
        ``binding.expired`` events); their Redis keys have already expired on their own.
        Returns how many were marked."""
        async with self._db.write_session() as s:
            due = (select(Binding.id).where(Binding.state == ACTIVE, Binding.expires_at <= now)
                   .order_by(Binding.expires_at).limit(limit))
            if s.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list((await s.execute(due)).scalars())
            if not ids:
                return 0
            count = await self._expire_stale(s, now, Binding.id.in_(ids))
            await s.commit()
        return count

    async def get(self, binding_id: str, now: datetime) -> BindingView:
        async with self._db.session() as s:
            row = await s.get(Binding, binding_id)
            if row is None:
                raise NotFound(f"binding {binding_id} not found")
            return row.view(now)

    async def active_for_order(self, shop_id: str, order_id: str, now: datetime
                               ) -> BindingView | None:
        async with self._db.session() as s:
            row = (await s.execute(select(Binding).where(
                Binding.state == ACTIVE, Binding.shop_id == shop_id, Binding.order_id == order_id,
                Binding.expires_at > now))).scalar_one_or_none()
            return None if row is None else row.view(now)

    # -- helpers ----------------------------------------------------------------------------
    async def _transact(self, work: Callable[[AsyncSession, set[str]], Awaitable[T]]) -> T:
        excluded: set[str] = set()
        for _attempt in range(self._policy.max_attempts):
            try:
                async with self._db.write_session() as s:
                    try:
                        result = await work(s, excluded)
                        await s.commit()
                        return result
                    except OperationalError as exc:
                        if getattr(exc.orig, "sqlstate", None) not in _RETRYABLE_SQLSTATES:
                            raise
                        await s.rollback()
            except _Lost as lost:
                excluded.add(lost.x)
            self.stats.retries += 1
        raise StoreUnavailable(
            f"gave up after {self._policy.max_attempts} attempts under contention; retry")

    async def _expire_stale(self, s: AsyncSession, now: datetime,
                            which: ColumnElement[bool]) -> int:
        """Mark active-but-past-expiry rows as expired (released at their expiry) so the
        partial unique indexes only see truly active rows; bump their X's last release.
        Whoever marks a binding expired writes its ``binding.expired`` event (once: the
        update only takes active rows)."""
        ended = (await s.execute(
            update(Binding)
            .where(Binding.state == ACTIVE, Binding.expires_at <= now, which)
            .values(state=BindingState.EXPIRED.value, released_at=Binding.expires_at)
            .returning(*_EVENT_COLUMNS)
            .execution_options(synchronize_session=False))).all()
        latest: dict[str, datetime] = {}
        for row in ended:
            if row.extension:
                continue
            latest[row.virtual_x] = max(row.expires_at, latest.get(row.virtual_x,
                                                                   row.expires_at))
        await _mark_released(s, latest)
        await release_slots(s, [(r.id, r.virtual_x, r.extension, r.expires_at)
                                for r in ended if r.extension])
        if ended and self._outbox.enabled:
            views = [BindingView(
                binding_id=r.id, shop_id=r.shop_id, order_id=r.order_id, buyer_id=r.buyer_id,
                caller_a=r.caller_a, virtual_x=r.virtual_x, buyer_masked=r.buyer_masked,
                created_at=r.created_at, expires_at=r.expires_at, released_at=r.expires_at,
                state=BindingState.EXPIRED, extension=r.extension) for r in ended]
            await self._outbox.write(s, [binding_expired(v) for v in
                                         sorted(views, key=lambda v: v.expires_at)], now)
        return len(ended)

    async def _allocate(self, s: AsyncSession, a: str, bidx: str, now: datetime,
                        region: str | None, excluded: set[str], mode: NumberMode | None
                        ) -> tuple[str, str] | None:
        """(X, extension) for a new binding: each mode the policy (or the request) allows,
        in order; extension '' for AXB."""
        for each in modes_to_try(self._policy.mode_policy, mode):
            if each is NumberMode.AXB:
                x = await select_virtual_number(
                    s, caller_a=a, buyer_bidx=bidx, now=now, cooldown=self._policy.cooldown,
                    preferred_region=region, excluded=excluded)
                if x is not None:
                    return x, ""
            else:
                slot = await select_extension_slot(
                    s, caller_a=a, now=now, cooldown=self._policy.cooldown,
                    preferred_region=region, excluded=excluded)
                if slot is not None:
                    return slot
        return None

    async def _switch_slot(self, s: AsyncSession, old: Binding, a2: str, now: datetime,
                           excluded: set[str]) -> tuple[str, str] | None:
        """An extension binding keeps its (X, extension) for the new caller unless that
        caller's cool-down on it is running; then another slot."""
        key = slot_key(old.virtual_x, old.extension)
        if key not in excluded and not await pair_cooling(
                s, a2, old.virtual_x, old.extension, now, self._policy.cooldown):
            return old.virtual_x, old.extension
        return await select_extension_slot(s, caller_a=a2, now=now,
                                           cooldown=self._policy.cooldown,
                                           preferred_region=None, excluded=excluded | {key})

    async def _pair_free(self, s: AsyncSession, a: str, x: str, now: datetime) -> bool:
        """(A, X) has no active binding and A is not in its cool-down on X."""
        clash = await s.scalar(select(func.count()).select_from(Binding).where(
            Binding.virtual_x == x, Binding.caller_a == a, or_(
                Binding.state == ACTIVE,
                and_(Binding.released_at.is_not(None),
                     Binding.released_at > now - self._policy.cooldown))))
        return not clash

async def _flush_or_lost(s: AsyncSession, x: str) -> None:
    try:
        await s.flush()
    except IntegrityError as exc:
        raise _Lost(x) from exc


async def _released(s: AsyncSession, row: Binding, at: datetime) -> None:
    """An ending binding's X (AXB) or slot (extension) records its release."""
    if row.extension:
        await release_slots(s, [(row.id, row.virtual_x, row.extension, at)])
    else:
        await _mark_released(s, {row.virtual_x: at})


async def _mark_released(s: AsyncSession, latest: dict[str, datetime]) -> None:
    for x in sorted(latest):  # a fixed lock order keeps concurrent releases deadlock-free
        at = latest[x]
        await s.execute(
            update(PoolNumber)
            .where(PoolNumber.number == x,
                   or_(PoolNumber.last_released_at.is_(None), PoolNumber.last_released_at < at))
            .values(last_released_at=at)
            .execution_options(synchronize_session=False))


