"""The ports the call path and the HTTP API are written against; ``binding_store`` implements
them. Only ``routing`` types cross these boundaries (no SQLAlchemy, no Redis).

All methods are coroutines; time is passed in (tz-aware UTC). Infrastructure faults surface as
``routing.errors.StoreUnavailable``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from routing.binding_views import BindingView, SwitchedBinding
from routing.extensions import NumberMode
from routing.model import CallAttempt, CallContext


class RouteLookup(Protocol):
    async def find_for_call(self, caller_e164: str, x_e164: str, now: datetime) -> CallContext:
        """Everything needed to decide a call from ``caller_e164`` to ``x_e164``."""
        ...


class AttemptRecorder(Protocol):
    async def record(self, attempt: CallAttempt) -> None:
        """Write one routing decision; a repeat of (system_name, uniqueid) is ignored."""
        ...


class BindingService(Protocol):
    async def issue(
        self,
        shop_id: str,
        order_id: str,
        buyer_id: str,
        caller_a: str,
        buyer_number: str,
        now: datetime,
        ttl: timedelta | None = None,
        preferred_region: str | None = None,
        *,
        actor: str,
        mode: NumberMode | None = None,
    ) -> BindingView:
        """Issue (or return the existing active) privacy number X for a shop's order.

        Raises ``ServiceNotEnabled``, ``CallerNotApproved``, ``NotFound`` (shop),
        ``InvalidNumber``, ``InvalidBindingRequest`` (validity < 60 s), ``PoolExhausted``.
        """
        ...

    async def switch_caller(self, binding_id: str, new_caller: str, *, actor: str,
                            now: datetime) -> SwitchedBinding:
        """Atomically move an active binding to another approved caller of the same shop."""
        ...

    async def release(self, binding_id: str, *, actor: str, now: datetime) -> BindingView:
        """End a binding early (idempotent: an ended binding is returned as it is)."""
        ...

    async def get(self, binding_id: str, now: datetime) -> BindingView:
        """One binding by id (``NotFound`` if there is none)."""
        ...
