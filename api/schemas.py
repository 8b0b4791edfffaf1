"""Request and response bodies (pydantic v2): the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from routing.binding_views import BindingView
from routing.call_log_views import CallLogEntry
from routing.extensions import dial_string, display
from routing.numbers import national
from routing.shop_views import CallerView, ShopView
from routing.usecases.bindings import CallerSwitch, ClickToCall
from routing.usecases.reveal import RevealResult

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
Number = Field(min_length=1, max_length=32, description="A phone number (E.164 or national).")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EnableRequest(_In):
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
    callers: list[CallerOut]


class AddCallerRequest(_In):
    number: str = Number
    account_id: str | None = Field(default=None, min_length=1, max_length=64,
                                   pattern=ID_PATTERN,
                                   description="The sub-account whose phone this is.")


class BatchRowIn(_In):
    number: str = Field(max_length=64)
    account_id: str | None = Field(default=None, max_length=64)


class BatchRequest(_In):
    rows: list[BatchRowIn] = Field(min_length=1, max_length=500)


class BatchRowOut(BaseModel):
    line: int
    outcome: str
    message: str
    number: str | None
    account_id: str | None


class BatchResult(BaseModel):
    added: int
    refused: int
    rows: list[BatchRowOut]


class RevealRequest(_In):
    buyer_number: str = Field(min_length=1, max_length=32,
                              description="The buyer's number as the order store gives it.")
    buyer_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    order_created_at: AwareDatetime | None = Field(
        default=None, description="When the order was placed (for the order-age rule).")


class QuotaOut(BaseModel):
    used: int
    limit: int
    resets_at: datetime


class RevealResponse(BaseModel):
    order_id: str
    decision: Literal["plaintext", "privacy"]
    rule: str = Field(description="The risk rule that decided.")
    rule_detail: str
    buyer_number: str | None = Field(default=None, description="plaintext only")
    quota: QuotaOut | None = None
    binding_id: str | None = Field(default=None, description="privacy only")
    virtual_number: str | None = None
    caller_number: str | None = Field(default=None, description="A: dial X from this number")
    other_callers: list[str] = Field(default_factory=list)
    expires_at: datetime | None = None
    created: bool | None = Field(default=None, description="false: the existing binding")
    x: str | None = None
    extension: str | None = Field(default=None, description="privacy only; '' in AXB mode")
    display: str | None = None
    dial_string: str | None = None

    @classmethod
    def of(cls, result: RevealResult) -> RevealResponse:
        if result.binding is None:
            return cls(order_id=result.order_id, decision="plaintext", rule=result.rule.value,
                       rule_detail=result.rule_detail, buyer_number=result.buyer_number,
                       quota=QuotaOut(used=result.quota_used, limit=result.quota.limit,
                                      resets_at=result.quota.resets_at))
        b = result.binding
        return cls(order_id=result.order_id, decision="privacy", rule=result.rule.value,
                   rule_detail=result.rule_detail, binding_id=b.binding_id,
                   virtual_number=b.virtual_x, caller_number=b.caller_a,
                   other_callers=list(result.other_callers), expires_at=b.expires_at,
                   created=b.created, **XOut.of(b.virtual_x, b.extension).model_dump())


class XOut(BaseModel):
    """How a binding's X is shown and dialled (an extension binding: X plus its extension)."""

    x: str = Field(description="The virtual number X (E.164).")
    extension: str = Field(default="", description="Extension on X ('' in AXB mode).")
    display: str = Field(description="For people: '170 0000 0001 ext. 1234'.")
    dial_string: str = Field(description="For phones that send DTMF after answer: X, a "
                             "pause (','), then the extension.")

    @classmethod
    def of(cls, virtual_x: str, extension: str) -> XOut:
        local = national(virtual_x)
        return cls(x=virtual_x, extension=extension, display=display(local, extension),
                   dial_string=dial_string(local, extension))


class BindingOut(BaseModel):
    binding_id: str
    order_id: str
    buyer_id: str
    caller_number: str
    virtual_number: str
    buyer_masked: str
    created_at: datetime
    expires_at: datetime
    released_at: datetime | None
    state: Literal["active", "released", "expired"]
    x: str = ""
    extension: str = ""
    display: str = ""
    dial_string: str = ""

    @classmethod
    def of(cls, view: BindingView) -> BindingOut:
        shown = XOut.of(view.virtual_x, view.extension)
        return cls(binding_id=view.binding_id, order_id=view.order_id, buyer_id=view.buyer_id,
                   caller_number=view.caller_a, virtual_number=view.virtual_x,
                   buyer_masked=view.buyer_masked, created_at=view.created_at,
                   expires_at=view.expires_at, released_at=view.released_at,
                   state=view.state.value, **shown.model_dump())


class SwitchCallerRequest(_In):
    caller_number: str = Number


class SwitchCallerResponse(BaseModel):
    binding: BindingOut
    previous_binding_id: str
    virtual_number_changed: bool
    other_callers: list[str]

    @classmethod
    def of(cls, result: CallerSwitch) -> SwitchCallerResponse:
        s = result.switched
        return cls(binding=BindingOut.of(s.binding), previous_binding_id=s.previous.binding_id,
                   virtual_number_changed=s.x_changed, other_callers=list(result.other_callers))


class ClickToCallResponse(BaseModel):
    status: Literal["ringing"]
    reference: str
    caller_number: str
    virtual_number: str

    @classmethod
    def of(cls, call: ClickToCall) -> ClickToCallResponse:
        return cls(status="ringing", reference=call.reference, caller_number=call.caller_a,
                   virtual_number=call.virtual_x)


class VirtualCheck(BaseModel):
    number: str
    virtual: bool


class CallRecordOut(BaseModel):
    id: int
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    duration_seconds: int
    billsec: int
    direction: str | None
    outcome: str
    reason: str
    reason_text: str
    caller_number: str = Field(description="The shop's caller number A (merchant calls)")
    caller_masked: str
    virtual_number: str
    buyer_masked: str
    order_id: str
    binding_id: str
    order_link: str
    chat_link: str

    @classmethod
    def of(cls, entry: CallLogEntry) -> CallRecordOut:
        r = entry.record
        return cls(id=entry.id, started_at=r.start_utc, answered_at=r.answer_utc,
                   ended_at=r.end_utc, duration_seconds=r.duration, billsec=r.billsec,
                   direction=r.direction.value if r.direction else None,
                   outcome=r.outcome.value, reason=r.reason,
                   reason_text=entry.reason_text, caller_number=r.caller_a,
                   caller_masked=r.caller_masked, virtual_number=r.virtual_x,
                   buyer_masked=r.buyer_masked, order_id=r.order_id, binding_id=r.binding_id,
                   order_link=entry.order_link, chat_link=entry.chat_link)


class CallsPage(BaseModel):
    since: datetime
    until: datetime
    calls: list[CallRecordOut]
    next_cursor: str | None


class HealthCheck(BaseModel):
    name: str
    ok: bool
    detail: str
    required: bool


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    checks: list[HealthCheck]
