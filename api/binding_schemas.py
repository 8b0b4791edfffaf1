"""Bodies of the reveal (``POST /v1/orders/{order_id}/reveal``) and of the bindings it issues
(``/v1/bindings/...``): how a binding's virtual number X is shown and dialled, and whether a
number is one (``/v1/numbers/{number}/virtual``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from api.schemas import ID_PATTERN, Number, StrictBody, examples
from routing.binding_views import BindingView
from routing.extensions import dial_string, display
from routing.numbers import national
from routing.usecases.bindings import CallerSwitch, ClickToCall
from routing.usecases.reveal import RevealResult

_BINDING = {"binding_id": "b_8f2c1d", "order_id": "o-1001", "buyer_id": "buyer-1",
            "caller_number": "+8613800000002", "virtual_number": "+8617000000001",
            "buyer_masked": "139****0001", "created_at": "2026-11-28T06:00:00Z",
            "expires_at": "2026-11-28T10:00:00Z", "released_at": None, "state": "active"}


class RevealRequest(StrictBody):
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


class SwitchCallerRequest(StrictBody):
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
