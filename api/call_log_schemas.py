"""Bodies of a shop's call records (``GET /v1/shops/{shop_id}/calls``), and the example of
their CSV export.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.call_log_csv import EXPORT_COLUMNS
from api.schemas import examples
from routing.call_log_views import CallLogEntry

_CALL = {"id": 42, "started_at": "2026-11-28T06:05:00Z", "answered_at": "2026-11-28T06:05:09Z",
         "ended_at": "2026-11-28T06:07:30Z", "duration_seconds": 150, "billsec": 141,
         "direction": "merchant", "outcome": "answered", "reason": "bridged",
         "reason_text": "connected", "caller_number": "+8613800000002",
         "caller_masked": "138****0002", "virtual_number": "+8617000000001",
         "buyer_masked": "139****0001", "order_id": "o-1001", "binding_id": "b_8f2c1d",
         "order_link": "https://shop.example.com/orders/o-1001",
         "chat_link": "https://shop.example.com/im?order=o-1001&buyer=buyer-1",
         "extension": None, "display": "170 0000 0001", "mark": None}


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


CSV_EXAMPLE = ",".join(EXPORT_COLUMNS) + "\r\n..."
