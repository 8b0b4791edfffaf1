"""The ports the use cases (``routing.usecases``) are written against, beyond
``routing.ports``: shops, accounts and callers, orders, the pool, audit, the call log and
click-to-call; and the principal who acts.

Credentials, the reveal's facts and counters, webhooks, health and metrics have ports of their
own (``routing.token_ports``, ``routing.reveal_ports``, ``routing.webhook_ports``,
``routing.health_ports``, ``routing.metrics_ports``).

``binding_store`` implements the store ports (``agi`` click-to-call); the composition root
(``scripts/container.py``) plugs them in. All methods are coroutines unless noted; time is
passed in (tz-aware UTC).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from routing.audit import AuditKind
from routing.call_log_views import CallLogPage, CallLogQuery, ExportRow, LinkTemplates
from routing.model import AccountRole, CallerStatus
from routing.orders import OrderStatus, OrderView, OrderWrite
from routing.shop_views import (
    AccountView,
    BatchReport,
    BatchRow,
    CallerView,
    EnableResult,
    ShopView,
)

# --- auth --------------------------------------------------------------------------------------


class PrincipalKind(StrEnum):
    PLATFORM = "platform"  # the platform's credential: every shop (the former admin token)
    ACCOUNT = "account"  # one shop account (main or sub), or the platform on its behalf
    AUDITOR = "auditor"  # reads the call log and exports of the shops it is granted
    OPERATOR = "operator"  # a person at the privnum host's shell (the CLI): every shop


ON_BEHALF = ">"
"""Joins who acted and the account acted for in an audit actor (``platform:t1>acct``); ids
never contain it."""


def acting_for(actor: str, account_id: str) -> str:
    """The audit actor of ``actor`` acting on behalf of ``account_id``."""
    if actor == account_id or actor.endswith(ON_BEHALF + account_id):
        return actor
    return f"{actor}{ON_BEHALF}{account_id}"


def account_of(actor: str) -> str:
    """The account an audit actor acted as (the part after the last ``>``, else itself)."""
    return actor.rsplit(ON_BEHALF, 1)[-1]


@dataclass(frozen=True)
class Principal:
    """Who is acting. ``role`` is ``None`` for an account token whose account does not exist
    yet (the main account of a shop that has not enabled the service). For an operator,
    ``token_id`` is the name recorded in the audit log and ``account_id`` the shop account it
    acts as, if it names one (``--as``). ``via`` is the platform token acting on behalf of the
    account (``X-Privnum-Account``): it has that account's rights, and the audit names both.
    ``shops`` are the shops an auditor is granted."""

    kind: PrincipalKind
    token_id: str
    shop_id: str | None = None
    account_id: str | None = None
    role: AccountRole | None = None
    via: str | None = None
    shops: frozenset[str] = frozenset()

    @classmethod
    def operator(cls, name: str = "cli", *, acting_as: str | None = None) -> Principal:
        return cls(kind=PrincipalKind.OPERATOR, token_id=name, account_id=acting_as)

    @property
    def actor(self) -> str:
        """Who the audit log names: who acted, and for whom (``who>account``)."""
        if self.kind is PrincipalKind.PLATFORM:
            return f"platform:{self.token_id}"
        if self.kind is PrincipalKind.AUDITOR:
            return f"auditor:{self.token_id}"
        if self.kind is PrincipalKind.OPERATOR:
            return acting_for(self.token_id, self.account_id) if self.account_id \
                else self.token_id
        if self.via is not None and self.account_id is not None:
            return acting_for(f"platform:{self.via}", self.account_id)
        return self.account_id or self.token_id

    @property
    def is_admin(self) -> bool:
        """Acts on every shop (the platform or an operator)."""
        return self.kind in (PrincipalKind.PLATFORM, PrincipalKind.OPERATOR)


# --- orders ------------------------------------------------------------------------------------


class OrderPort(Protocol):
    """Orders the platform registers; the buyer number is encrypted before it is stored."""

    async def put(self, *, shop_id: str, order_id: str, buyer_number: str, buyer_id: str,
                  ordered_at: datetime, status: OrderStatus, actor: str, now: datetime
                  ) -> OrderWrite:
        """Create or replace the order (``buyer_number`` is E.164)."""
        ...

    async def get(self, shop_id: str, order_id: str) -> OrderView:
        """The order (``NotFound`` if the shop never registered it)."""
        ...


# --- shops, accounts, caller numbers -------------------------------------------------------------


class ShopPort(Protocol):
    async def get(self, shop_id: str) -> ShopView: ...

    async def all(self) -> list[ShopView]: ...

    async def enable(self, shop_id: str, *, now: datetime, main_account_id: str,
                     main_phone: str | None = None, agreement_version: str | None = None,
                     accepted_by: str | None = None, name: str | None = None,
                     level: str | None = None, actor: str | None = None
                     ) -> EnableResult: ...

    async def disable(self, shop_id: str, *, actor: str, now: datetime) -> ShopView: ...

    async def set_level(self, shop_id: str, level: str, *, actor: str, now: datetime
                        ) -> ShopView: ...

    async def set_timezone(self, shop_id: str, timezone: str | None, *, actor: str,
                           now: datetime) -> ShopView: ...


class AccountPort(Protocol):
    async def get(self, account_id: str) -> AccountView: ...

    async def list_accounts(self, shop_id: str) -> list[AccountView]: ...

    async def add_sub_account(self, shop_id: str, account_id: str, *, actor: str, now: datetime,
                              phone: str | None = None, name: str = "",
                              phone_reviewed: bool = False) -> AccountView: ...

    async def set_phone_reviewed(self, account_id: str, reviewed: bool, *, actor: str,
                                 now: datetime) -> AccountView: ...

    async def change_phone(self, shop_id: str, account_id: str, phone: str | None, *,
                           actor: str, now: datetime) -> AccountView:
        """A sub-account's new phone (E.164 or ``None``): it awaits review again, and the old
        phone stops being one of the shop's caller numbers."""
        ...

    async def remove_sub_account(self, shop_id: str, account_id: str, *, actor: str,
                                 now: datetime) -> AccountView:
        """Remove a sub-account with its caller numbers; its tokens are revoked with it."""
        ...


class CallerPort(Protocol):
    async def list_callers(self, shop_id: str, *, status: CallerStatus | None = None
                           ) -> list[CallerView]: ...

    async def set_status(self, shop_id: str, number: str, status: CallerStatus, *, actor: str,
                         now: datetime) -> CallerView: ...

    async def add(self, shop_id: str, number: str, *, actor: str, now: datetime,
                  account_id: str | None = None) -> CallerView: ...

    async def remove(self, shop_id: str, number: str, *, actor: str, now: datetime
                     ) -> CallerView: ...

    async def batch_add(self, shop_id: str, rows: Sequence[BatchRow], *, actor: str,
                        now: datetime) -> BatchReport: ...


class PoolPort(Protocol):
    async def is_virtual_number(self, number: str) -> bool:
        """Whether the number is (or was) a privacy-pool member; unparseable → False."""
        ...

    async def utilisation(self, now: datetime) -> tuple[int, int]:
        """(numbers in an active binding, numbers in service)."""
        ...


# --- audit ---------------------------------------------------------------------------------------


class AuditPort(Protocol):
    async def append(self, *, now: datetime, actor: str, kind: AuditKind,
                     shop_id: str | None = None,
                     subject: str = "", detail: Mapping[str, Any] | None = None) -> None: ...


# --- call log ------------------------------------------------------------------------------------


class CallLogReader(Protocol):
    """The call records (``routing.call_log_views``)."""

    async def page(self, query: CallLogQuery, now: datetime, links: LinkTemplates
                   ) -> CallLogPage:
        """A shop's records: default the last day, at most 30 days back
        (``CallLogQueryError`` otherwise), newest first, cursor-paged."""
        ...

    def export(self, start: datetime, end: datetime, shop_id: str | None = None
               ) -> AsyncIterator[ExportRow]:
        """Every record with ``start <= start_utc < end`` (one shop or all), oldest first,
        streamed in constant memory."""
        ...


# --- click-to-call -------------------------------------------------------------------------------


class CallOriginator(Protocol):
    async def click_to_call(self, *, caller_a: str, virtual_x: str, binding_id: str,
                            timeout_seconds: int, extension: str = "") -> str:
        """Ring A (AMI Originate, Async) and, when A answers, send the call into the inbound
        dialplan as A calling X (followed by ``extension`` for an extension binding, which
        routes without a prompt), so it is routed and logged like any other. Returns a reference
        (the action id). Raises ``ClickToCallUnavailable`` when AMI is off or down."""
        ...
