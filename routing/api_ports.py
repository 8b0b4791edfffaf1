"""Ports the HTTP API needs beyond ``routing.ports``: auth, shops and callers, the pool check,
reveal counters, audit, call log, click-to-call, health and metrics.

``scripts/api_service.py`` adapts the store repositories to these; tests wire real stores.
All methods are coroutines unless noted; time is passed in (tz-aware UTC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from routing.binding_views import BindingView
from routing.call_log_views import CallLogPage
from routing.errors import Conflict, PrivnumError
from routing.model import AccountRole
from routing.ports import BindingService
from routing.shop_views import (
    AccountView,
    BatchReport,
    BatchRow,
    CallerView,
    EnableResult,
    ShopView,
)

# --- errors the API adds (stable codes) -------------------------------------------------------


class Unauthenticated(PrivnumError):
    code = "unauthenticated"


class BindingNotActive(Conflict):
    """The binding was released or has expired: obtain a new privacy number."""

    code = "binding_not_active"


class RevealRateLimited(PrivnumError):
    code = "reveal_rate_limited"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ClickToCallUnavailable(PrivnumError):
    code = "click_to_call_unavailable"


# --- auth --------------------------------------------------------------------------------------


class PrincipalKind(StrEnum):
    ADMIN = "admin"  # the platform: every shop
    ACCOUNT = "account"  # one shop account (main or sub)


@dataclass(frozen=True)
class Principal:
    """Who is calling. ``role`` is ``None`` for an account token whose account does not exist
    yet (the main account of a shop that has not enabled the service)."""

    kind: PrincipalKind
    token_id: str
    shop_id: str | None = None
    account_id: str | None = None
    role: AccountRole | None = None

    @property
    def actor(self) -> str:
        return self.account_id or f"admin:{self.token_id}"

    @property
    def is_admin(self) -> bool:
        return self.kind is PrincipalKind.ADMIN


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    secret: str = field(repr=False)  # shown once, never stored
    kind: PrincipalKind
    shop_id: str | None
    account_id: str | None
    created_at: datetime


class TokenVerifier(Protocol):
    async def verify(self, token: str, now: datetime) -> Principal | None:
        """The principal of a presented bearer token, or ``None`` (unknown, revoked, expired)."""
        ...


# --- shops, accounts, caller numbers -------------------------------------------------------------


class ShopPort(Protocol):
    async def get(self, shop_id: str) -> ShopView: ...

    async def enable(self, shop_id: str, *, now: datetime, main_account_id: str,
                     main_phone: str | None, agreement_version: str | None) -> EnableResult: ...

    async def disable(self, shop_id: str, *, actor: str, now: datetime) -> ShopView: ...


class AccountPort(Protocol):
    async def get(self, account_id: str) -> AccountView: ...


class CallerPort(Protocol):
    async def list_callers(self, shop_id: str) -> list[CallerView]: ...

    async def add(self, shop_id: str, number: str, *, actor: str, now: datetime,
                  account_id: str | None = None) -> CallerView: ...

    async def remove(self, shop_id: str, number: str, *, actor: str, now: datetime
                     ) -> CallerView: ...

    async def batch_add(self, shop_id: str, rows: Sequence[BatchRow], *, actor: str,
                        now: datetime) -> BatchReport: ...


class RevealBindings(BindingService, Protocol):
    """The binding service plus the cheap look-up a repeated click needs."""

    async def active_for_order(self, shop_id: str, order_id: str, now: datetime
                               ) -> BindingView | None:
        """The order's active, unexpired binding, if any (one indexed query)."""
        ...


class PoolPort(Protocol):
    async def is_virtual_number(self, number: str) -> bool:
        """Whether the number is (or was) a privacy-pool member; unparseable → False."""
        ...

    async def utilisation(self, now: datetime) -> tuple[int, int]:
        """(numbers in an active binding, numbers in service)."""
        ...


# --- reveal --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaTake:
    taken: bool
    used: int


class RevealCounters(Protocol):
    """Counters that stay correct under concurrency (SQL upsert or Redis INCR/Lua).

    ``now`` is the caller's clock: a counter's lifetime is measured from it, so a store whose
    own clock disagrees (Redis on another host) still keeps each window's count exact."""

    async def hit_velocity(self, account_id: str, window: int, window_end: datetime,
                           now: datetime) -> int:
        """Count one reveal for the account in fixed window ``window``; the new count."""
        ...

    async def take_quota(self, shop_id: str, day: str, limit: int, resets_at: datetime,
                         now: datetime) -> QuotaTake:
        """Take one plaintext unit of ``shop_id``'s quota for ``day`` if fewer than ``limit``
        are used; atomically."""
        ...

    async def give_back_quota(self, shop_id: str, day: str) -> None:
        """Return a unit taken for a reveal that then failed (no partial effects)."""
        ...

    async def quota_used(self, shop_id: str, day: str) -> int: ...


class AuditPort(Protocol):
    async def append(self, *, now: datetime, actor: str, kind: str, shop_id: str | None = None,
                     subject: str = "", detail: Mapping[str, Any] | None = None) -> None: ...


# --- call log ------------------------------------------------------------------------------------


class CallLogPort(Protocol):
    """The shop's call records (``routing.call_log_views``): default the last day, at most 30
    days back (``CallLogQueryError`` otherwise), newest first, cursor-paged."""

    async def calls(self, shop_id: str, *, now: datetime, since: datetime | None,
                    until: datetime | None, limit: int, cursor: str | None) -> CallLogPage: ...

    async def export_csv(self, shop_id: str, *, now: datetime, since: datetime | None,
                         until: datetime | None) -> str: ...


# --- click-to-call, health, metrics --------------------------------------------------------------


class CallOriginator(Protocol):
    async def click_to_call(self, *, caller_a: str, virtual_x: str, binding_id: str,
                            timeout_seconds: int) -> str:
        """Ring A (AMI Originate, Async) and, when A answers, send the call into the inbound
        dialplan as A calling X, so it is routed and logged like any other. Returns a reference
        (the action id). Raises ``ClickToCallUnavailable`` when AMI is off or down."""
        ...


@dataclass(frozen=True)
class HealthStatus:
    name: str
    ok: bool
    detail: str = ""
    required: bool = True


class HealthProbe(Protocol):
    name: str

    async def check(self) -> HealthStatus: ...


class MetricsSink(Protocol):
    """What the call path and the API count (implemented over prometheus-client in ``api``;
    the AGI handler receives the same object through this Protocol). Synchronous, cheap."""

    def call_routed(self, outcome: str) -> None: ...

    def agi_latency(self, seconds: float) -> None: ...

    def allocation(self, result: str) -> None: ...

    def reveal(self, decision: str, rule: str) -> None: ...

    def pool(self, in_use: int, total: int) -> None: ...
