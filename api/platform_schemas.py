"""Bodies of the platform's endpoints: orders it registers, tokens, sub-accounts, the pool."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.schemas import examples
from routing.orders import OrderStatus, OrderView
from routing.shop_views import AccountView
from routing.token_ports import IssuedToken, TokenView

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---- orders -------------------------------------------------------------------------------


class PutOrderRequest(StrictBody):
    model_config = examples({"shop_id": "shop-1", "buyer_number": "+8613900000001",
                             "buyer_id": "buyer-1",
                             "ordered_at": "2026-11-27T10:00:00+08:00", "status": "placed"})

    shop_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    buyer_number: str = Field(min_length=1, max_length=32,
                              description="The buyer's number; encrypted at once, never shown "
                                          "again (not in this response either).")
    buyer_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    ordered_at: AwareDatetime = Field(description="When the order was placed; not in the "
                                                  "future.")
    status: OrderStatus = OrderStatus.PLACED


class OrderOut(BaseModel):
    model_config = examples({"shop_id": "shop-1", "order_id": "o-1001", "buyer_id": "buyer-1",
                             "ordered_at": "2026-11-27T02:00:00Z", "status": "placed",
                             "created_at": "2026-11-27T02:00:05Z",
                             "updated_at": "2026-11-27T02:00:05Z", "created": True})

    shop_id: str
    order_id: str
    buyer_id: str
    ordered_at: datetime
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    created: bool | None = Field(default=None, description="PUT only: whether it was new.")

    @classmethod
    def of(cls, order: OrderView, created: bool | None = None) -> OrderOut:
        return cls(shop_id=order.shop_id, order_id=order.order_id, buyer_id=order.buyer_id,
                   ordered_at=order.ordered_at, status=order.status,
                   created_at=order.created_at, updated_at=order.updated_at, created=created)


# ---- tokens -------------------------------------------------------------------------------

TokenKind = Literal["platform", "account", "auditor"]


class IssueTokenRequest(StrictBody):
    model_config = examples({"kind": "account", "shop_id": "shop-1", "account_id": "main-1",
                             "label": "erp"}, {"kind": "auditor", "shops": ["shop-1"]})

    kind: TokenKind
    shop_id: str | None = Field(default=None, min_length=1, max_length=64,
                                pattern=ID_PATTERN, description="account: the account's shop.")
    account_id: str | None = Field(default=None, min_length=1, max_length=64,
                                   pattern=ID_PATTERN, description="account: the account.")
    shops: list[str] = Field(default_factory=list, max_length=1000,
                             description="auditor: the shops whose calls it reads.")
    label: str = Field(default="", max_length=200)
    days: int | None = Field(default=None, ge=1, le=36_500,
                             description="Expire after this many days (default: never).")


class TokenOut(BaseModel):
    model_config = examples({"token_id": "tk1a2b3c", "kind": "account", "shop_id": "shop-1",
                             "account_id": "main-1", "shops": [], "label": "erp",
                             "created_at": "2026-11-27T02:00:00Z", "expires_at": None,
                             "revoked_at": None, "state": "active"})

    token_id: str
    kind: TokenKind
    shop_id: str | None
    account_id: str | None
    shops: list[str]
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    state: Literal["active", "revoked"]

    @classmethod
    def of(cls, token: TokenView) -> TokenOut:
        return cls(token_id=token.token_id, kind=token.kind.value,  # type: ignore[arg-type]
                   shop_id=token.shop_id, account_id=token.account_id,
                   shops=list(token.shops), label=token.label, created_at=token.created_at,
                   expires_at=token.expires_at, revoked_at=token.revoked_at,
                   state="revoked" if token.revoked_at else "active")


class NewTokenOut(BaseModel):
    model_config = examples({"token_id": "tk1a2b3c", "kind": "account", "shop_id": "shop-1",
                             "account_id": "main-1", "shops": [],
                             "created_at": "2026-11-27T02:00:00Z",
                             "secret": "pn_tk1a2b3c_s3cr3tv4lu3"})

    token_id: str
    kind: TokenKind
    shop_id: str | None
    account_id: str | None
    shops: list[str]
    created_at: datetime
    secret: str = Field(description="The bearer token; shown this once only.")

    @classmethod
    def of(cls, token: IssuedToken) -> NewTokenOut:
        return cls(token_id=token.token_id, kind=token.kind.value,  # type: ignore[arg-type]
                   shop_id=token.shop_id, account_id=token.account_id,
                   shops=list(token.shops), created_at=token.created_at, secret=token.secret)


class TokenList(BaseModel):
    model_config = examples({"tokens": [{"token_id": "tk1a2b3c", "kind": "account",
                                         "shop_id": "shop-1",
                                         "account_id": "main-1", "shops": [], "label": "erp",
                                         "created_at": "2026-11-27T02:00:00Z",
                                         "expires_at": None, "revoked_at": None,
                                         "state": "active"}]})

    tokens: list[TokenOut]


_ACCOUNT = {"account_id": "clerk-1", "shop_id": "shop-1", "role": "sub", "name": "After-sales",
            "phone": "+8613900000002", "phone_review": "pending",
            "created_at": "2026-11-27T02:00:00Z"}


# ---- accounts -----------------------------------------------------------------------------


class AccountOut(BaseModel):
    model_config = examples(_ACCOUNT)

    account_id: str
    shop_id: str
    role: Literal["main", "sub"]
    name: str
    phone: str | None
    phone_review: Literal["reviewed", "pending", "no_phone"]
    created_at: datetime

    @classmethod
    def of(cls, account: AccountView) -> AccountOut:
        review: Literal["reviewed", "pending", "no_phone"] = (
            "no_phone" if account.phone is None
            else "reviewed" if account.phone_reviewed else "pending")
        return cls(account_id=account.id, shop_id=account.shop_id,
                   role=account.role.value,
                   name=account.name, phone=account.phone, phone_review=review,
                   created_at=account.created_at)


class AccountList(BaseModel):
    model_config = examples({"accounts": [_ACCOUNT]})

    accounts: list[AccountOut]


class AddAccountRequest(StrictBody):
    model_config = examples({"account_id": "clerk-1", "phone": "+8613900000002",
                             "name": "After-sales",
                             "phone_reviewed": False})

    account_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    phone: str | None = Field(default=None, min_length=1, max_length=32)
    name: str = Field(default="", max_length=200)
    phone_reviewed: bool = Field(default=False, description="The platform's review (platform "
                                                            "credential only).")


class ChangePhoneRequest(StrictBody):
    model_config = examples({"phone": "+8613900000003"})

    phone: str | None = Field(min_length=1, max_length=32,
                              description="The new phone (null: none); it awaits review again "
                                          "and the old one stops being a caller number.")


class ReviewRequest(StrictBody):
    model_config = examples({"reviewed": True})

    reviewed: bool


# ---- pool ---------------------------------------------------------------------------------


class PoolUtilisation(BaseModel):
    model_config = examples({"in_use": 120, "in_service": 1000, "ratio": 0.12})

    in_use: int = Field(description="Numbers in an active binding.")
    in_service: int = Field(description="Numbers in service.")
    ratio: float = Field(description="in_use / in_service (0 when the pool is empty).")
