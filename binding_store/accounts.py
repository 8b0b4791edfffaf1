"""Accounts: the shop's main account (created at enablement) and its sub-accounts, which the
main account maintains. ``phone_reviewed`` records that the phone passed the platform's review."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from binding_store import audit
from binding_store.db import Database
from binding_store.models import Account
from binding_store.shops import require_admin
from routing.audit import AuditKind
from routing.errors import Conflict, NotFound
from routing.model import AccountRole
from routing.numbers import normalize
from routing.shop_views import AccountView, check_id, check_name


def account_view(row: Account) -> AccountView:
    return AccountView(id=row.id, shop_id=row.shop_id, role=AccountRole(row.role), name=row.name,
                       phone=row.phone, phone_reviewed=row.phone_reviewed,
                       created_at=row.created_at)


class AccountRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, account_id: str) -> AccountView:
        async with self._db.session() as session:
            row = await session.get(Account, account_id)
        if row is None:
            raise NotFound(f"account {account_id} not found")
        return account_view(row)

    async def list_accounts(self, shop_id: str) -> list[AccountView]:
        """Main account first, then sub-accounts by id."""
        async with self._db.session() as session:
            rows = (await session.scalars(
                select(Account).where(Account.shop_id == shop_id).order_by(Account.id)
            )).all()
        views = [account_view(r) for r in rows]
        return sorted(views, key=lambda a: (a.role is not AccountRole.MAIN, a.id))

    async def add_sub_account(
        self,
        shop_id: str,
        account_id: str,
        *,
        actor: str,
        now: datetime,
        phone: str | None = None,
        name: str = "",
        phone_reviewed: bool = False,
    ) -> AccountView:
        """A sub-account of ``shop_id``; only the shop's main account (``actor``) adds one."""
        account_id = check_id("account", account_id)
        name = check_name(name)
        e164 = normalize(phone) if phone else None
        try:
            async with self._db.session() as session:
                await require_admin(session, shop_id, actor)
                existing = await session.get(Account, account_id)
                if existing is not None:
                    raise Conflict(f"account {account_id} already exists (shop {existing.shop_id})")
                row = Account(id=account_id, shop_id=shop_id, role=AccountRole.SUB.value,
                              name=name, phone=e164, phone_reviewed=phone_reviewed,
                              created_at=now)
                session.add(row)
                audit.record(session, now=now, actor=actor, kind=AuditKind.ACCOUNT_ADDED,
                             shop_id=shop_id, subject=account_id,
                             detail={"phone": e164, "phone_reviewed": phone_reviewed})
                await session.commit()
        except IntegrityError:
            raise Conflict(f"account {account_id} already exists") from None
        return account_view(row)

    async def set_phone_reviewed(
        self, account_id: str, reviewed: bool, *, actor: str, now: datetime
    ) -> AccountView:
        """Record the platform's review of an account's phone (a platform action)."""
        async with self._db.session() as session:
            row = await session.get(Account, account_id)
            if row is None:
                raise NotFound(f"account {account_id} not found")
            if row.phone_reviewed != reviewed:
                row.phone_reviewed = reviewed
                audit.record(session, now=now, actor=actor, kind=AuditKind.ACCOUNT_REVIEWED,
                             shop_id=row.shop_id, subject=account_id,
                             detail={"phone_reviewed": reviewed})
                await session.commit()
            return account_view(row)
