"""One issue request for ``privnum_issue`` and its answer as the domain sees it.

The request carries everything the database cannot make: the binding's id, the buyer's
ciphertext, blind index and masked form (never the plaintext), the audit detail and the
``binding.created`` event exactly as the ORM path writes them, with X left for the database
to fill in (``virtual_x``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from binding_store import outbox
from binding_store.index_values import IndexEntry
from routing.audit import AuditKind
from routing.binding_views import BindingView
from routing.errors import (
    CallerNotApproved,
    NotFound,
    PrivnumError,
    ServiceNotEnabled,
    StoreUnavailable,
)
from routing.events import binding_created
from routing.model import BindingState

_MAX_ACTOR = 64


@dataclass(frozen=True)
class IssueRow:
    """One request's answer (see ``binding_store.issue_sql`` for the statuses)."""

    status: str
    binding_id: str | None
    virtual_x: str | None
    buyer_id: str | None
    caller_a: str | None
    buyer_masked: str | None
    created_at: datetime | None
    expires_at: datetime | None
    detail: str | None


@dataclass(frozen=True)
class IssueInput:
    shop_id: str
    order_id: str
    buyer_id: str
    caller_a: str  # normalized
    buyer_cipher: bytes
    buyer_bidx: str
    buyer_masked: str
    now: datetime
    validity: timedelta
    preferred_region: str | None
    actor: str

    def request(self, *, with_event: bool) -> dict[str, Any]:
        binding_id = uuid.uuid4().hex
        expires = self.now + self.validity
        placeholder = BindingView(
            binding_id=binding_id, shop_id=self.shop_id, order_id=self.order_id,
            buyer_id=self.buyer_id, caller_a=self.caller_a, virtual_x="",
            buyer_masked=self.buyer_masked, created_at=self.now, expires_at=expires,
            released_at=None, state=BindingState.ACTIVE, created=True)
        req: dict[str, Any] = {
            "id": binding_id, "shop": self.shop_id, "order": self.order_id,
            "buyer_id": self.buyer_id, "a": self.caller_a, "bidx": self.buyer_bidx,
            "cipher": self.buyer_cipher.hex(), "masked": self.buyer_masked,
            "now": self.now.isoformat(), "expires": expires.isoformat(),
            "region": self.preferred_region, "actor": self.actor[:_MAX_ACTOR],
            "kind": AuditKind.BINDING_CREATED.value,
            # as audit.encode_detail scrubs it: the buyer is masked, the time ISO
            "audit": {"order": self.order_id, "caller_a": self.caller_a, "virtual_x": "",
                      "buyer": self.buyer_masked, "expires_at": expires.isoformat()},
        }
        if with_event:
            req["event"] = outbox.fields_of(binding_created(placeholder))
        return req


@dataclass(frozen=True)
class IssueAnswer:
    """What came back: a view (new or the order's existing binding), the index entry of a
    new one; or ``fallback`` (the ORM path must do it), ``exhausted`` (find out why) or
    ``busy`` (send it again)."""

    view: BindingView | None = None
    entry: IndexEntry | None = None
    fallback: bool = False
    exhausted: bool = False
    busy: bool = False  # another transaction holds the order or the only free numbers


def interpret(row: IssueRow, given: IssueInput, attempts: int) -> IssueAnswer:
    """The answer for ``given``; a refusal is raised as its domain error."""
    match row.status:
        case "created" | "existing":
            return _view(row, given)
        case "stale":
            return IssueAnswer(fallback=True)
        case "exhausted":
            return IssueAnswer(exhausted=True)
        case "busy":
            return IssueAnswer(busy=True)
        case _:
            raise refusal(row, given, attempts)


def refusal(row: IssueRow, given: IssueInput, attempts: int) -> PrivnumError:
    shop = given.shop_id
    match row.status:
        case "no_shop":
            return NotFound(f"shop {shop} not found")
        case "not_enabled":
            return ServiceNotEnabled(f"privacy-number service is not enabled for shop {shop}")
        case "caller":
            return CallerNotApproved(
                f"{given.caller_a} is not an approved caller number of shop {shop}"
                + ("" if row.detail is None else f" (status {row.detail})"))
        case "contention":
            return StoreUnavailable(f"gave up after {attempts} attempts under contention; "
                                    "retry")
        case _:
            return StoreUnavailable(f"binding not issued: {row.detail or row.status}")


def _view(row: IssueRow, given: IssueInput) -> IssueAnswer:
    created = row.status == "created"
    if (row.binding_id is None or row.virtual_x is None or row.created_at is None
            or row.expires_at is None):
        raise StoreUnavailable("the allocation function answered an incomplete row")
    state = BindingState.ACTIVE if given.now < row.expires_at else BindingState.EXPIRED
    view = BindingView(
        binding_id=row.binding_id, shop_id=given.shop_id, order_id=given.order_id,
        buyer_id=row.buyer_id or "", caller_a=row.caller_a or given.caller_a,
        virtual_x=row.virtual_x, buyer_masked=row.buyer_masked or "",
        created_at=row.created_at, expires_at=row.expires_at, released_at=None, state=state,
        created=created)
    entry = None
    if created:
        entry = IndexEntry(row.binding_id, given.shop_id, given.order_id, given.caller_a,
                           row.virtual_x, given.buyer_bidx, given.buyer_cipher,
                           row.expires_at)
    return IssueAnswer(view=view, entry=entry)
