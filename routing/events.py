"""The events privnum pushes to the platform (webhooks): the catalogue and each payload.

Pure: every event is built from a domain value the store has in hand inside the transaction
that changes it (a binding, a routing decision, a call record), so the outbox row lands with
the change or not at all. Numbers: the shop's own caller numbers (A) and the virtual number
(X) are plain; anything about the buyer is masked (``138****5678``), never plaintext.

What privnum can tell, and when:

* at the routing decision (FastAGI) it knows a call arrived and what it decided:
  ``call.started`` for every call, ``call.rejected`` right after it for a refused one;
* from Asterisk's CDR (AMI ``Cdr`` event, or the safety-net CSV), after the call has ended,
  it knows the times, the disposition and the Q.850 cause: ``call.ringing`` (bridged calls;
  the CDR has no ringing time, so ``observed`` is false and ``occurred_at`` null),
  ``call.answered`` (with Asterisk's answer time), ``call.ended`` and ``cdr``;
* a call whose CDR never arrived is closed from its decision after a grace period: its
  ``call.ended`` says ``observed: false``.

privnum does not subscribe to Asterisk's call-progress events, so nothing is sent while a
call rings or talks; ``realtime`` says which events were sent as they happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from routing.binding_views import BindingView
from routing.call_log_views import CallRecord, Outcome, reason_text
from routing.model import Action, CallAttempt, Direction
from routing.reasons import Reason

SCHEMA_VERSION = 1


class EventType(StrEnum):
    BINDING_CREATED = "binding.created"
    BINDING_SWITCHED = "binding.switched"
    BINDING_RELEASED = "binding.released"
    BINDING_EXPIRED = "binding.expired"
    CALL_STARTED = "call.started"
    CALL_RINGING = "call.ringing"
    CALL_ANSWERED = "call.answered"
    CALL_ENDED = "call.ended"
    CALL_REJECTED = "call.rejected"
    CDR = "cdr"
    NUMBER_QUARANTINED = "number.quarantined"
    NUMBER_QUARANTINE_RELEASED = "number.quarantine_released"
    RECORDING_STORED = "recording.stored"
    RECORDING_PURGED = "recording.purged"


class HangupSide(StrEnum):
    PRIVNUM = "privnum"  # the dialplan hung up on privnum's decision (reject, fail path)
    CALLER = "caller"  # the caller hung up before the dialplan did


@dataclass(frozen=True)
class Event:
    """One event as the outbox stores it. ``stream`` orders delivery: events of one stream
    (one order's bindings, one call) reach a subscriber in the order they were written."""

    type: EventType
    stream: str
    shop_id: str
    occurred_at: datetime | None
    data: Mapping[str, Any] = field(default_factory=dict)


def order_stream(shop_id: str, order_id: str) -> str:
    """An order's bindings form one chain (a switch closes one and opens the next)."""
    return f"order:{shop_id}:{order_id}"


def call_stream(linkedid: str) -> str:
    return f"call:{linkedid}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---- bindings ---------------------------------------------------------------------------------


def binding_data(view: BindingView) -> dict[str, Any]:
    return {
        "binding_id": view.binding_id, "shop_id": view.shop_id, "order_id": view.order_id,
        "buyer_id": view.buyer_id, "caller_a": view.caller_a, "virtual_x": view.virtual_x,
        "buyer_masked": view.buyer_masked, "state": view.state.value,
        "created_at": _iso(view.created_at), "expires_at": _iso(view.expires_at),
        "released_at": _iso(view.released_at),
        # Extension mode: the extension on X ('' for AXB), and how the binding is shown.
        "extension": view.extension,
    }


def binding_created(view: BindingView) -> Event:
    return Event(EventType.BINDING_CREATED, order_stream(view.shop_id, view.order_id),
                 view.shop_id, view.created_at, {"binding": binding_data(view)})


def binding_switched(new: BindingView, previous: BindingView, *, at: datetime) -> Event:
    """The order's caller switched: ``previous`` is closed, ``binding`` replaces it."""
    return Event(EventType.BINDING_SWITCHED, order_stream(new.shop_id, new.order_id),
                 new.shop_id, at, {
                     "binding": binding_data(new), "previous": binding_data(previous),
                     "x_changed": (new.virtual_x, new.extension)
                     != (previous.virtual_x, previous.extension)})


def binding_released(view: BindingView, *, at: datetime) -> Event:
    return Event(EventType.BINDING_RELEASED, order_stream(view.shop_id, view.order_id),
                 view.shop_id, at, {"binding": binding_data(view)})


def binding_expired(view: BindingView) -> Event:
    """Sent when privnum marks the expiry (the sweeper, or a change that meets it first);
    ``occurred_at`` is the expiry itself."""
    return Event(EventType.BINDING_EXPIRED, order_stream(view.shop_id, view.order_id),
                 view.shop_id, view.expires_at, {"binding": binding_data(view)})


# ---- calls at the routing decision ------------------------------------------------------------


@dataclass(frozen=True)
class BindingFacts:
    """What the call events say about the buyer of a decision's binding (masked only)."""

    buyer_masked: str = ""
    buyer_id: str = ""


def _a_reached(direction: Direction | None, caller_a: str) -> str | None:
    """The shop's number on the call: the caller on a merchant call, the number a callback was
    put through to (the binding's A, or the shop's main number once A was switched off)."""
    return caller_a or None if direction is not None else None


def _reason(code: str, outcome: str = "") -> dict[str, Any]:
    """A reason code with its text and Q.850 cause, for every code ``routing.reasons`` has
    (new codes flow through unchanged)."""
    try:
        reason = Reason(code)
    except ValueError:
        return {"reason": code or None, "reason_text": reason_text(code, outcome) or None,
                "q850_cause": None}
    return {"reason": reason.value, "reason_text": reason.text,
            "q850_cause": reason.hangup_cause}


def _decision_call(attempt: CallAttempt, facts: BindingFacts) -> dict[str, Any]:
    return {
        "call_id": attempt.linkedid or attempt.uniqueid, "uniqueid": attempt.uniqueid,
        "system_name": attempt.system_name or None, "shop_id": attempt.shop_id or None,
        "order_id": attempt.order_id or None, "binding_id": attempt.binding_id or None,
        "buyer_id": facts.buyer_id or None,
        "direction": attempt.direction.value if attempt.direction else None,
        "virtual_x": attempt.virtual_x or None, "extension": attempt.extension or None,
        "caller_masked": attempt.caller_masked or None,
        "a_reached": _a_reached(attempt.direction, attempt.caller_a),
        "buyer_masked": facts.buyer_masked or None,
        "source": "decision", "observed": True, "realtime": True,
    }


def reason_fields(reason: Reason) -> dict[str, Any]:
    """:func:`_reason` of a code that is a ``Reason`` already (a decision's): no look-up. Also
    what PostgreSQL's copy of the decision payloads puts in them
    (``binding_store.decision_events_sql``)."""
    return {"reason": reason.value, "reason_text": reason.text,
            "q850_cause": reason.hangup_cause}


def decision_events(attempt: CallAttempt, facts: BindingFacts = BindingFacts()
                    ) -> list[Event]:
    """``call.started`` for every decided call, then ``call.rejected`` for a refusal."""
    stream = call_stream(attempt.linkedid or attempt.uniqueid)
    call = _decision_call(attempt, facts)
    at = _iso(attempt.at)  # one call: built once for both events (per call, in a batch)
    reason = reason_fields(attempt.reason)
    started = {**call, "action": attempt.action.value, "started_at": at, **reason,
               "mark": attempt.mark or None}
    events = [Event(EventType.CALL_STARTED, stream, attempt.shop_id, attempt.at, started)]
    if attempt.action is Action.REJECT:
        rejected = {**call, "rejected_at": at, **reason,
                    "hangup_by": HangupSide.PRIVNUM.value}
        events.append(Event(EventType.CALL_REJECTED, stream, attempt.shop_id, attempt.at,
                            rejected))
    return events


# ---- calls from the call record ---------------------------------------------------------------

_ALERTED = {"ANSWERED": True, "NO ANSWER": True, "BUSY": False, "CONGESTION": False,
            "FAILED": False}


def hangup_side(record: CallRecord, lastapp: str) -> HangupSide | None:
    """Who ended the call, where the CDR tells: a refused or failed call's dialplan ends in
    ``Hangup`` unless the caller left first (during the prompt). A bridged call's CDR names
    no side (``None``)."""
    if record.outcome not in (Outcome.REJECTED, Outcome.FAILED) or not lastapp:
        return None
    return HangupSide.PRIVNUM if lastapp.lower() == "hangup" else HangupSide.CALLER


def _record_call(record: CallRecord, *, observed: bool) -> dict[str, Any]:
    return {
        "call_id": record.linkedid or record.uniqueid, "uniqueid": record.uniqueid,
        "system_name": record.system_name or None, "shop_id": record.shop_id or None,
        "order_id": record.order_id or None, "binding_id": record.binding_id or None,
        "buyer_id": record.buyer_id or None,
        "direction": record.direction.value if record.direction else None,
        "virtual_x": record.virtual_x or None, "extension": record.extension or None,
        "caller_masked": record.caller_masked or None,
        "a_reached": _a_reached(record.direction, record.caller_a),
        "buyer_masked": record.buyer_masked or None,
        "source": record.source.value, "observed": observed, "realtime": False,
    }


def record_events(record: CallRecord, *, chain_seq: int, row_hash: str,
                  hangup_by: HangupSide | None = None) -> list[Event]:
    """The events of a call record just appended to the call log: ``call.ringing`` and
    ``call.answered`` (bridged calls), ``call.ended`` and ``cdr``."""
    stream = call_stream(record.linkedid or record.uniqueid)
    from_cdr = record.source.value != "attempt"  # closed from its decision: no CDR seen
    call = _record_call(record, observed=from_cdr)
    events: list[Event] = []
    bridged = record.outcome in (Outcome.ANSWERED, Outcome.NOT_ANSWERED)
    if bridged and from_cdr:
        events.append(Event(EventType.CALL_RINGING, stream, record.shop_id, None, {
            **call, "observed": False, "ringing_at": None,
            "alerted": _ALERTED.get(record.disposition),
            "note": "Asterisk's CDR has no ringing time; alerted is read from the "
                    "disposition"}))
    if record.outcome is Outcome.ANSWERED and record.answer_utc is not None:
        events.append(Event(EventType.CALL_ANSWERED, stream, record.shop_id,
                            record.answer_utc, {**call, "answered_at": _iso(record.answer_utc)}))
    ended = {
        **call, "started_at": _iso(record.start_utc), "answered_at": _iso(record.answer_utc),
        "ended_at": _iso(record.end_utc) if from_cdr else None,
        "duration": record.duration, "billable_seconds": record.billsec,
        "answered": record.outcome is Outcome.ANSWERED, "outcome": record.outcome.value,
        "disposition": record.disposition, **_reason(record.reason, record.outcome),
        "q850_cause": record.hangup_cause,
        "hangup_by": hangup_by.value if hangup_by else None,
        "hangup_by_observed": hangup_by is not None,
    }
    events.append(Event(EventType.CALL_ENDED, stream, record.shop_id,
                        record.end_utc if from_cdr else None, ended))
    columns = {k: (_iso(v) if isinstance(v, datetime) else v)
               for k, v in record.columns().items()}
    columns["direction"] = record.direction.value if record.direction else None
    columns["outcome"] = record.outcome.value
    columns["source"] = record.source.value
    columns["extension"] = record.extension  # null on calls without one
    columns["mark"] = record.mark  # null on calls no call rule let through
    events.append(Event(EventType.CDR, stream, record.shop_id,
                        record.end_utc if from_cdr else None, {
                            "record": {**columns, "reason_text": record.reason_text,
                                       "chain_seq": chain_seq, "row_hash": row_hash}}))
    return events
