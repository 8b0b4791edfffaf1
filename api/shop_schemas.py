"""Bodies of a shop's own endpoints (``/v1/shops/{shop_id}/...``): enabling the service and
its status, and the shop's caller numbers, one at a time or in a batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas import ID_PATTERN, Number, StrictBody, examples
from routing.shop_views import CallerView, ShopView

_CALLER = {"number": "+8613800000002", "account_id": "acct-sub", "status": "approved",
           "is_main": False, "created_at": "2026-11-28T06:00:00Z"}
_BATCH_ROW = {"line": 1, "outcome": "ok", "message": "added", "number": "+8613800000002",
              "account_id": "acct-sub"}


class EnableRequest(StrictBody):
    model_config = examples({"agreement_version": "2023-05", "main_phone": "+8613800000001",
                                "timezone": "Asia/Shanghai"})

    agreement_version: str = Field(min_length=1, max_length=32,
                                   description="Version of the service agreement accepted.")
    main_phone: str | None = Field(default=None, min_length=1, max_length=32,
                                   description="Main account phone (first enablement only).")
    main_account_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=ID_PATTERN,
        description="Main account id; only with the platform admin token.")
    timezone: str | None = Field(
        default=None, min_length=1, max_length=64, examples=["Asia/Shanghai"],
        description="IANA time zone the shop's people read its call log in (first "
                    "enablement; default: the risk policy's zone).")


class ServiceStatus(BaseModel):
    model_config = examples({
        "shop_id": "shop-1", "service_state": "enabled", "level": "L1",
        "agreement_version": "2023-05", "accepted_by": "acct-main",
        "accepted_at": "2026-11-28T06:00:00Z", "main_account_id": "acct-main",
        "timezone": "Asia/Shanghai", "changed": True, "ignored": []})

    shop_id: str
    service_state: Literal["not_enabled", "enabled", "disabled"]
    level: str
    agreement_version: str | None
    accepted_by: str | None
    accepted_at: datetime | None
    main_account_id: str | None
    timezone: str = Field(description="The zone the shop's call log is read in (its own, or "
                                      "the default).")
    changed: bool | None = Field(default=None, description="enable only: false on a repeat")
    ignored: list[str] = Field(
        default_factory=list, description="enable only, on a repeat: the values given that "
                                          "were left as they were, and why.")

    @classmethod
    def of(cls, shop: ShopView, timezone: str, changed: bool | None = None,
           ignored: tuple[str, ...] = ()) -> ServiceStatus:
        return cls(shop_id=shop.id, service_state=shop.service_state.value, level=shop.level,
                   agreement_version=shop.agreement_version, accepted_by=shop.accepted_by,
                   accepted_at=shop.accepted_at, main_account_id=shop.main_account_id,
                   timezone=timezone, changed=changed, ignored=list(ignored))


class CallerOut(BaseModel):
    model_config = examples(_CALLER)

    number: str
    account_id: str
    status: Literal["pending", "approved", "rejected", "disabled"]
    is_main: bool
    created_at: datetime

    @classmethod
    def of(cls, caller: CallerView) -> CallerOut:
        return cls(number=caller.number, account_id=caller.account_id,
                   status=caller.status.value, is_main=caller.is_main,
                   created_at=caller.created_at)


class CallerList(BaseModel):
    model_config = examples({"callers": [_CALLER]})

    callers: list[CallerOut]


class AddCallerRequest(StrictBody):
    model_config = examples({"number": "+8613800000002", "account_id": "acct-sub"})

    number: str = Number
    account_id: str | None = Field(default=None, min_length=1, max_length=64,
                                   pattern=ID_PATTERN,
                                   description="The sub-account whose phone this is.")


class BatchRowIn(StrictBody):
    model_config = examples({"number": "+8613800000002", "account_id": "acct-sub"})

    number: str = Field(max_length=64)
    account_id: str | None = Field(default=None, max_length=64)


class BatchRequest(StrictBody):
    model_config = examples({"rows": [{"number": "+8613800000002", "account_id": "acct-sub"},
                                     {"number": "12345"}]})

    rows: list[BatchRowIn] = Field(min_length=1, max_length=500)


class BatchRowOut(BaseModel):
    model_config = examples(_BATCH_ROW)

    line: int
    outcome: str
    message: str
    number: str | None
    account_id: str | None


class BatchResult(BaseModel):
    model_config = examples({"added": 1, "refused": 1, "rows": [
        _BATCH_ROW, {"line": 2, "outcome": "invalid_number",
                     "message": "not a valid phone number", "number": None,
                     "account_id": None}]})

    added: int
    refused: int
    rows: list[BatchRowOut]
