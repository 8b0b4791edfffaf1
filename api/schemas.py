"""Request and response bodies (pydantic v2): the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.call_log_csv import EXPORT_COLUMNS
from routing.binding_views import BindingView
from routing.call_log_views import CallLogEntry
from routing.extensions import dial_string, display
from routing.numbers import national
from routing.shop_views import CallerView, ShopView
from routing.usecases.bindings import CallerSwitch, ClickToCall
from routing.usecases.reveal import RevealResult

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
Number = Field(min_length=1, max_length=32, description="A phone number (E.164 or national).")

# Examples (the OpenAPI document shows them; a test wants one on every operation).
_CALLER = {"number": "+8613800000002", "account_id": "acct-sub", "status": "approved",
           "is_main": False, "created_at": "2026-11-28T06:00:00Z"}
_BATCH_ROW = {"line": 1, "outcome": "ok", "message": "added", "number": "+8613800000002",
              "account_id": "acct-sub"}
_BINDING = {"binding_id": "b_8f2c1d", "order_id": "o-1001", "buyer_id": "buyer-1",
            "caller_number": "+8613800000002", "virtual_number": "+8617000000001",
            "buyer_masked": "139****0001", "created_at": "2026-11-28T06:00:00Z",
            "expires_at": "2026-11-28T10:00:00Z", "released_at": None, "state": "active"}
_CALL = {"id": 42, "started_at": "2026-11-28T06:05:00Z", "answered_at": "2026-11-28T06:05:09Z",
         "ended_at": "2026-11-28T06:07:30Z", "duration_seconds": 150, "billsec": 141,
         "direction": "merchant", "outcome": "answered", "reason": "bridged",
         "reason_text": "connected", "caller_number": "+8613800000002",
         "caller_masked": "138****0002", "virtual_number": "+8617000000001",
         "buyer_masked": "139****0001", "order_id": "o-1001", "binding_id": "b_8f2c1d",
         "order_link": "https://shop.example.com/orders/o-1001",
         "chat_link": "https://shop.example.com/im?order=o-1001&buyer=buyer-1",
         "extension": None, "display": "170 0000 0001", "mark": None}
_CHECK = {"name": "database", "ok": True, "detail": "", "required": True}


def examples(*values: dict[str, Any]) -> ConfigDict:
    """Model-level examples: every operation using the model shows them."""
    return ConfigDict(json_schema_extra={"examples": list(values)})



class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EnableRequest(_In):
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


class AddCallerRequest(_In):
    model_config = examples({"number": "+8613800000002", "account_id": "acct-sub"})

    number: str = Number
    account_id: str | None = Field(default=None, min_length=1, max_length=64,
                                   pattern=ID_PATTERN,
                                   description="The sub-account whose phone this is.")


class BatchRowIn(_In):
    model_config = examples({"number": "+8613800000002", "account_id": "acct-sub"})

    number: str = Field(max_length=64)
    account_id: str | None = Field(default=None, max_length=64)


class BatchRequest(_In):
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


class RevealRequest(_In):
    """The order names the buyer and its time (``PUT /v1/orders/{order_id}``); older clients
    may still send these fields, which must then match the registered order."""

    model_config = examples({})

    buyer_number: str | None = Field(default=None, min_length=1, max_length=32,
                                     description="Deprecated: must match the registered order.")
    buyer_id: str | None = Field(default=None, min_length=1, max_length=64,
                                 pattern=ID_PATTERN,
                                 description="Deprecated: must match the registered order.")
    order_created_at: AwareDatetime | None = Field(
        default=None, description="Deprecated: must match the registered order.")


class QuotaOut(BaseModel):
    model_config = examples({"used": 3, "limit": 20, "resets_at": "2026-11-28T16:00:00Z"})

    used: int
    limit: int
    resets_at: datetime


class RevealResponse(BaseModel):
    model_config = examples({
        "order_id": "o-1001", "decision": "privacy", "rule": "shop_level",
        "rule_detail": "the shop's level does not allow plaintext reveals",
        "binding_id": "b_8f2c1d", "virtual_number": "+8617000000001",
        "caller_number": "+8613800000002", "other_callers": ["+8613800000001"],
        "expires_at": "2026-11-28T10:00:00Z", "created": True}, {
        "order_id": "o-1002", "decision": "plaintext", "rule": "plaintext_allowed",
        "rule_detail": "plaintext allowed; one unit of the daily quota used",
        "buyer_number": "+8613900000001",
        "quota": {"used": 3, "limit": 20, "resets_at": "2026-11-28T16:00:00Z"}})

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
    calls_refused: str | None = Field(
        default=None, description="privacy only: the reason code A's calls through the "
        "binding are refused with for now (caller_unreported: report the caller number)")
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
                   created=b.created, calls_refused=result.calls_refused,
                   **XOut.of(b.virtual_x, b.extension).model_dump())



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
    model_config = examples(_BINDING)

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
    model_config = examples({"caller_number": "+8613800000001"})

    caller_number: str = Number


class SwitchCallerResponse(BaseModel):
    model_config = examples({"binding": _BINDING, "previous_binding_id": "b_7a1e09",
                                "virtual_number_changed": False,
                                "other_callers": ["+8613800000002"]})

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
    model_config = examples({"status": "ringing", "reference": "c2c-3f9a",
                                "caller_number": "+8613800000002",
                                "virtual_number": "+8617000000001"})

    status: Literal["ringing"]
    reference: str
    caller_number: str
    virtual_number: str

    @classmethod
    def of(cls, call: ClickToCall) -> ClickToCallResponse:
        return cls(status="ringing", reference=call.reference, caller_number=call.caller_a,
                   virtual_number=call.virtual_x)


class VirtualCheck(BaseModel):
    model_config = examples({"number": "+8617000000001", "virtual": True})

    number: str
    virtual: bool


class CallRecordOut(BaseModel):
    model_config = examples(_CALL)

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
    extension: str | None = Field(
        default=None, description="Extension mode: the extension entered (null otherwise)")
    display: str = Field(default="", description="X as people read it, with the extension "
                         "('170 0000 0001 ext. 1234')")
    mark: str | None = Field(
        default=None, description="How a call rule let the call through: 'grace' (a buyer's "
        "callback within the grace window after the binding expired, put through to the shop), "
        "'fallback' (after the window, put through to the shop's service line); null otherwise")
    recording_id: str | None = Field(
        default=None, description="The call's recording, if the shop records calls and it "
        "is kept (its audio: GET /v1/recordings/{recording_id}/audio, auditors only).")

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
                   order_link=entry.order_link, chat_link=entry.chat_link,
                   extension=r.extension, display=r.display_x, mark=r.mark,
                   recording_id=entry.recording_id or None)


class CallsPage(BaseModel):
    model_config = examples({"since": "2026-11-27T06:00:00Z", "until": "2026-11-28T06:00:00Z",
                                "calls": [_CALL], "next_cursor": None})

    since: datetime
    until: datetime
    calls: list[CallRecordOut]
    next_cursor: str | None


class Live(BaseModel):
    model_config = examples({"status": "ok"})

    status: Literal["ok"] = "ok"


CSV_EXAMPLE = ",".join(EXPORT_COLUMNS) + "\r\n..."
METRICS_EXAMPLE = ('# HELP privnum_calls_total Routed calls by outcome (reason code).\n'
                   '# TYPE privnum_calls_total counter\n'
                   'privnum_calls_total{outcome="bridged"} 42.0\n')


class HealthCheck(BaseModel):
    model_config = examples(_CHECK)

    name: str
    ok: bool
    detail: str
    required: bool


class Health(BaseModel):
    model_config = examples({"status": "ok", "checks": [
        _CHECK, {"name": "redis", "ok": True, "detail": "not configured", "required": False}]})

    status: Literal["ok", "degraded", "down"]
    checks: list[HealthCheck]
