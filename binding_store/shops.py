"""Shops: one-time service enablement (agreement, main account, main caller number), the
service switch and the shop level. Every change is audited in the same transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store import audit, watermark
from binding_store.db import Database
from binding_store.models import Account, CallerNumber, Shop
from binding_store.redis_index import RedisIndex, ShopState, hold_states_strict, publish_states
from routing.api_ports import account_of
from routing.audit import AuditKind
from routing.errors import Conflict, InvalidInput, NotFound, PermissionDenied, ServiceNotEnabled
from routing.model import AccountRole, CallerStatus, ServiceState
from routing.numbers import normalize_mobile
from routing.shop_views import (
    DEFAULT_LEVEL,
    EnableResult,
    ShopView,
    check_id,
    check_level,
    check_name,
    check_timezone,
)

_MAX_AGREEMENT = 32


class _LostRace(Exception):
    """Another enablement of the same shop committed while this one was running."""


async def load_shop(session: AsyncSession, shop_id: str) -> Shop:
    shop = await session.get(Shop, shop_id)
    if shop is None:
        raise NotFound(f"shop {shop_id} not found")
    return shop


async def main_account(session: AsyncSession, shop_id: str) -> Account | None:
    return (await session.scalars(
        select(Account).where(Account.shop_id == shop_id, Account.role == AccountRole.MAIN.value)
    )).first()


async def require_admin(session: AsyncSession, shop_id: str, actor: str) -> tuple[Shop, Account]:
    """The shop and its main account, provided ``actor`` is that main account (or acts on
    its behalf: ``platform:t1>main``)."""
    shop = await load_shop(session, shop_id)
    admin = await main_account(session, shop_id)
    if admin is None:
        raise ServiceNotEnabled(f"shop {shop_id} has not enabled the privacy-number service")
    if account_of(actor) != admin.id:
        raise PermissionDenied(
            f"only the main account of shop {shop_id} may do this (not {actor[:64]!r})"
        )
    return shop, admin


async def main_caller(session: AsyncSession, shop_id: str) -> str:
    """The shop's main caller number (the main account's phone), "" before enablement."""
    number = await session.scalar(
        select(CallerNumber.number)
        .where(CallerNumber.shop_id == shop_id, CallerNumber.is_main.is_(True))
        .order_by(CallerNumber.id).limit(1))
    return number or ""


def require_enabled(shop: Shop) -> None:
    if shop.service_state != ServiceState.ENABLED.value:
        raise ServiceNotEnabled(
            f"shop {shop.id} privacy-number service is {shop.service_state.replace('_', ' ')}"
        )


async def view_of(session: AsyncSession, shop: Shop) -> ShopView:
    return shop_view(shop, await main_account(session, shop.id))


def shop_view(shop: Shop, main: Account | None) -> ShopView:
    """The view of ``shop`` whose main account is ``main``."""
    return ShopView(
        id=shop.id,
        name=shop.name,
        level=shop.level,
        service_state=ServiceState(shop.service_state),
        agreement_version=shop.agreement_version,
        accepted_by=shop.accepted_by,
        accepted_at=shop.accepted_at,
        created_at=shop.created_at,
        updated_at=shop.updated_at,
        main_account_id=main.id if main else None,
        main_phone=main.phone if main else None,
        timezone=shop.timezone,
    )


class ShopRepository:
    """Shops and their service state. Every service-state change raises the index watermark
    in its transaction; with an ``index``, switching a shop off first marks its Redis state
    as being changed (a Redis fault aborts it) and every committed change is pushed to the
    index (see ``binding_store.redis_index``)."""

    def __init__(self, db: Database, index: RedisIndex | None = None) -> None:
        self._db = db
        self._index = index

    async def get(self, shop_id: str) -> ShopView:
        async with self._db.session() as session:
            return await view_of(session, await load_shop(session, shop_id))

    async def all(self) -> list[ShopView]:
        async with self._db.session() as session:
            shops = (await session.scalars(select(Shop).order_by(Shop.id))).all()
            return [await view_of(session, s) for s in shops]

    async def enable(
        self,
        shop_id: str,
        *,
        now: datetime,
        main_account_id: str,
        main_phone: str | None = None,
        agreement_version: str | None = None,
        accepted_by: str | None = None,
        name: str | None = None,
        level: str | None = None,
        main_name: str = "",
        actor: str | None = None,
    ) -> EnableResult:
        """Open the service for a shop. Idempotent: an enabled shop comes back unchanged.

        The first enablement records the agreement (version, who accepted it, when) and
        creates the main account with its phone and that phone as the shop's main caller
        number (approved, cannot be removed). A disabled shop is switched back on. ``actor``:
        who the audit names (default: the account that accepted the agreement).
        """
        shop_id = check_id("shop", shop_id)
        main_account_id = check_id("account", main_account_id)
        try:
            result, version, main = await self._enable(
                shop_id, now=now, main_account_id=main_account_id, main_phone=main_phone,
                agreement_version=agreement_version, accepted_by=accepted_by, name=name,
                level=level, main_name=main_name, actor=actor)
            if result.changed:
                await publish_states(
                    self._index, version,
                    shops=[(shop_id, ShopState(ServiceState.ENABLED.value, main))],
                    callers=[(shop_id, main, CallerStatus.APPROVED.value)] if main else ())
            return result
        except (IntegrityError, _LostRace):
            # A concurrent enablement won the race; report its result if it is the same shop.
            shop = await self.get(shop_id)
            if shop.enabled and shop.main_account_id == main_account_id:
                return EnableResult(shop=shop, changed=False)
            raise Conflict(f"shop {shop_id} was changed concurrently; try again") from None

    async def _enable(
        self,
        shop_id: str,
        *,
        now: datetime,
        main_account_id: str,
        main_phone: str | None,
        agreement_version: str | None,
        accepted_by: str | None,
        name: str | None,
        level: str | None,
        main_name: str,
        actor: str | None,
    ) -> tuple[EnableResult, int, str]:
        """The result, the watermark of the change (0: none) and the main caller number."""
        async with self._db.session() as session:
            shop = await session.get(Shop, shop_id)
            main = await main_account(session, shop_id) if shop is not None else None
            if main is not None and main.id != main_account_id:
                raise Conflict(
                    f"shop {shop_id} already has main account {main.id}, not {main_account_id}"
                )
            if shop is not None and shop.service_state == ServiceState.ENABLED.value:
                return EnableResult(shop=await view_of(session, shop), changed=False), 0, ""
            if shop is not None and shop.service_state == ServiceState.DISABLED.value:
                shop.service_state = ServiceState.ENABLED.value
                shop.updated_at = now
                audit.record(session, now=now, actor=actor or accepted_by or main_account_id,
                             kind=AuditKind.SHOP_REENABLED, shop_id=shop_id, subject=shop_id)
                mark = await watermark.bump(session)
                await session.commit()
                return (EnableResult(shop=await view_of(session, shop), changed=True), mark,
                        await main_caller(session, shop_id))

            phone, version = _first_enable_inputs(main_phone, agreement_version)
            other = await session.get(Account, main_account_id)
            if other is not None and other.shop_id == shop_id:
                raise _LostRace  # a concurrent enablement committed in between
            if other is not None:
                raise Conflict(f"account {main_account_id} already exists (shop {other.shop_id})")
            if shop is None:
                shop = Shop(id=shop_id, name="", level=DEFAULT_LEVEL, created_at=now)
                session.add(shop)
            shop.name = check_name(name) if name is not None else shop.name
            shop.level = check_level(level) if level is not None else shop.level
            shop.service_state = ServiceState.ENABLED.value
            shop.agreement_version = version
            shop.accepted_by = check_id("account", accepted_by or main_account_id)
            shop.accepted_at = now
            shop.updated_at = now
            await session.flush()
            session.add(Account(id=main_account_id, shop_id=shop_id, role=AccountRole.MAIN.value,
                                name=check_name(main_name), phone=phone, phone_reviewed=True,
                                created_at=now))
            await session.flush()
            session.add(CallerNumber(shop_id=shop_id, number=phone, account_id=main_account_id,
                                     status=CallerStatus.APPROVED.value, is_main=True,
                                     created_at=now, updated_at=now))
            audit.record(session, now=now, actor=actor or shop.accepted_by,
                         kind=AuditKind.SHOP_ENABLED,
                         shop_id=shop_id, subject=shop_id,
                         detail={"agreement_version": version, "main_account": main_account_id,
                                 "main_phone": phone, "level": shop.level})
            mark = await watermark.bump(session)
            await session.commit()
            return EnableResult(shop=await view_of(session, shop), changed=True), mark, phone

    async def disable(self, shop_id: str, *, actor: str, now: datetime) -> ShopView:
        """Switch the service off (no new privacy numbers; calls are refused). Idempotent."""
        return await self._switch(shop_id, ServiceState.ENABLED, ServiceState.DISABLED,
                                  AuditKind.SHOP_DISABLED, actor=actor, now=now)

    async def reenable(self, shop_id: str, *, actor: str, now: datetime) -> ShopView:
        """Switch a disabled shop back on (its agreement and callers are kept). Idempotent."""
        return await self._switch(shop_id, ServiceState.DISABLED, ServiceState.ENABLED,
                                  AuditKind.SHOP_REENABLED, actor=actor, now=now)

    async def _switch(self, shop_id: str, source: ServiceState, target: ServiceState,
                      kind: AuditKind, *, actor: str, now: datetime) -> ShopView:
        async with self._db.session() as session:
            shop = await load_shop(session, shop_id)
            if shop.service_state == ServiceState.NOT_ENABLED.value:
                raise ServiceNotEnabled(f"shop {shop_id} has never enabled the service")
            version = 0
            if shop.service_state == source.value:
                shop.service_state = target.value
                shop.updated_at = now
                audit.record(session, now=now, actor=actor, kind=kind, shop_id=shop_id,
                             subject=shop_id)
                version = await watermark.bump(session)
                if target is not ServiceState.ENABLED:
                    await hold_states_strict(self._index, version, shop_ids=[shop_id])
                await session.commit()
            view = await view_of(session, shop)
            main = await main_caller(session, shop_id)
        if version:
            await publish_states(self._index, version,
                                 shops=[(shop_id, ShopState(view.service_state.value, main))])
        return view

    async def set_level(self, shop_id: str, level: str, *, actor: str, now: datetime) -> ShopView:
        level = check_level(level)
        async with self._db.session() as session:
            shop = await load_shop(session, shop_id)
            if shop.level != level:
                audit.record(session, now=now, actor=actor, kind=AuditKind.SHOP_LEVEL,
                             shop_id=shop_id, subject=shop_id,
                             detail={"from": shop.level, "to": level})
                shop.level = level
                shop.updated_at = now
                await session.commit()
            return await view_of(session, shop)


    async def set_timezone(self, shop_id: str, timezone: str | None, *, actor: str,
                           now: datetime) -> ShopView:
        """The zone people read the shop's call log in (None: the default zone)."""
        zone = check_timezone(timezone) if timezone is not None else None
        async with self._db.session() as session:
            shop = await load_shop(session, shop_id)
            if shop.timezone != zone:
                audit.record(session, now=now, actor=actor, kind=AuditKind.SHOP_TIMEZONE,
                             shop_id=shop_id, subject=shop_id,
                             detail={"from": shop.timezone, "to": zone})
                shop.timezone = zone
                shop.updated_at = now
                await session.commit()
            return await view_of(session, shop)


def _first_enable_inputs(main_phone: str | None, agreement_version: str | None
                         ) -> tuple[str, str]:
    if not main_phone:
        raise InvalidInput("enabling the service needs the main account's phone")
    version = (agreement_version or "").strip()
    if not version or len(version) > _MAX_AGREEMENT:
        raise InvalidInput(
            f"enabling the service needs the accepted agreement version (1-{_MAX_AGREEMENT} chars)"
        )
    return normalize_mobile(main_phone), version
