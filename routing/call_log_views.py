"""The call log's record: one per call attempt, built from a CDR and/or the routing decision.

Pure. How an attempt becomes exactly one record:

* CDR + attempt (the normal case): the CDR's times/disposition, the attempt's decision.
* CDR without attempt (the routing service was down, the AGI failed, or the decision was never
  written): the CDR's own routing facts (``pn_*`` fields, ``agifail`` user field) decide;
  outcome ``failed`` with reason ``routing_error`` when the AGI failed.
* Attempt without CDR (AMI missed it and the safety-net CSV has no row either): after a grace
  period the attempt itself is closed as a record with ``source = "attempt"``, disposition
  ``NO CDR`` and outcome ``unknown`` for a bridge (``rejected`` for a reject). A CDR arriving
  later for the same uniqueid is then ignored (the record is already final).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from routing.binding_views import BindingView
from routing.cdr import CdrEvent
from routing.errors import CallLogQueryError
from routing.extensions import display
from routing.model import Action, CallAttempt, Direction
from routing.numbers import mask, national
from routing.reasons import Reason

DEFAULT_WINDOW = timedelta(days=1)
MAX_LOOKBACK = timedelta(days=30)
GENESIS_HASH = "0" * 64
OPTIONAL_COLUMNS = frozenset({"extension", "mark"})
"""Columns added after the chain began: hashed only when set, so every row written before
(and every row of a call without one) hashes exactly as it did."""


class Outcome(StrEnum):
    ANSWERED = "answered"  # bridged and the other party answered
    NOT_ANSWERED = "not_answered"  # bridged, the other party did not answer / busy
    REJECTED = "rejected"  # privnum refused the call (reason says why)
    FAILED = "failed"  # the routing service could not decide (fail closed)
    UNKNOWN = "unknown"  # decision recorded but Asterisk's CDR never arrived


class Source(StrEnum):
    AMI = "ami"
    CSV = "csv"
    ATTEMPT = "attempt"


@dataclass(frozen=True)
class CallRecord:
    """A stored call-log row without its chain columns. Numbers: ``caller_a`` is the shop's
    caller number (staff, plain), everything about the buyer is masked."""

    system_name: str
    uniqueid: str
    linkedid: str
    shop_id: str
    order_id: str
    binding_id: str
    buyer_id: str
    caller_a: str
    caller_masked: str
    virtual_x: str
    buyer_masked: str
    start_utc: datetime
    answer_utc: datetime | None
    end_utc: datetime
    duration: int
    billsec: int
    disposition: str
    hangup_cause: int | None
    direction: Direction | None
    outcome: Outcome
    reason: str  # a Reason value, or "" when the call's routing facts were never recorded
    source: Source
    # Extension mode: the extension entered (or dialled after X); None on every other call.
    # Hashed only when set (see ``OPTIONAL_COLUMNS``).
    extension: str | None = None
    # How a call rule let the call through (``routing.call_rules.CallMark``: "grace",
    # "fallback"); None on every other call. Hashed only when set (``OPTIONAL_COLUMNS``).
    mark: str | None = None

    @property
    def reason_text(self) -> str:
        return reason_text(self.reason, self.outcome)

    @classmethod
    def from_stored(cls, values: Mapping[str, Any]) -> CallRecord:
        """A record from its stored columns (ValueError on a state no version writes)."""
        direction = values["direction"]
        return cls(
            system_name=values["system_name"], uniqueid=values["uniqueid"],
            linkedid=values["linkedid"], shop_id=values["shop_id"],
            order_id=values["order_id"], binding_id=values["binding_id"],
            buyer_id=values["buyer_id"], caller_a=values["caller_a"],
            caller_masked=values["caller_masked"], virtual_x=values["virtual_x"],
            buyer_masked=values["buyer_masked"], start_utc=values["start_utc"],
            answer_utc=values["answer_utc"], end_utc=values["end_utc"],
            duration=values["duration"], billsec=values["billsec"],
            disposition=values["disposition"], hangup_cause=values["hangup_cause"],
            direction=Direction(direction) if direction else None,
            outcome=Outcome(values["outcome"]), reason=values["reason"],
            source=Source(values["source"]), extension=values.get("extension") or None,
            mark=values.get("mark") or None)

    def columns(self) -> dict[str, Any]:
        """The stored columns (what the row hash covers): a later, optional column only when
        set."""
        return {k: v for k, v in asdict(self).items()
                if not (k in OPTIONAL_COLUMNS and v is None)}

    @property
    def display_x(self) -> str:
        """X as people read it, with the extension (``171 0000 0001 ext. 1234``)."""
        if not self.virtual_x:
            return ""
        try:
            local = national(self.virtual_x)
        except Exception:  # X as the fail path recorded it (not E.164): shown as it is
            local = self.virtual_x
        return display(local, self.extension or "")


def reason_text(reason: str, outcome: str) -> str:
    try:
        return Reason(reason).text
    except ValueError:
        if outcome == Outcome.REJECTED:
            return "rejected (reason not recorded)"
        if outcome == Outcome.UNKNOWN:
            return "no call detail record"
        return ""


def _reason_of(cdr: CdrEvent, attempt: CallAttempt | None) -> tuple[str, bool]:
    """(reason code, rejected?) from the attempt, else the CDR's own fields."""
    if attempt is not None:
        return attempt.reason.value, attempt.action is Action.REJECT
    if cdr.pn_reason in Reason.__members__.values():
        return cdr.pn_reason, cdr.pn_reason != Reason.BRIDGED
    if cdr.userfield.lower().startswith("agifail"):
        return Reason.ROUTING_ERROR.value, True
    if cdr.userfield.lower() == "rejected":
        return "", True
    return (Reason.BRIDGED.value if cdr.pn_binding else ""), False


def _direction_of(cdr: CdrEvent, attempt: CallAttempt | None) -> Direction | None:
    if attempt is not None and attempt.direction is not None:
        return attempt.direction
    try:
        return Direction(cdr.pn_direction) if cdr.pn_direction else None
    except ValueError:
        return None


def record_from_cdr(cdr: CdrEvent, attempt: CallAttempt | None, binding: BindingView | None,
                    source: Source) -> CallRecord:
    reason, rejected = _reason_of(cdr, attempt)
    direction = _direction_of(cdr, attempt)
    if reason == Reason.ROUTING_ERROR:
        outcome = Outcome.FAILED
    elif rejected:
        outcome = Outcome.REJECTED
    elif cdr.disposition == "ANSWERED" and cdr.answer is not None:
        outcome = Outcome.ANSWERED
    else:
        outcome = Outcome.NOT_ANSWERED
    raw_caller = cdr.pn_caller or cdr.src
    # The shop's caller number A (staff, plain): on a merchant call the number that called;
    # on a callback the one it reached, which only the routing decision knows (the binding's
    # A, or the shop's main number once A was switched off).
    caller_a = ""
    if binding is not None and direction is Direction.MERCHANT:
        caller_a = binding.caller_a
    elif attempt is not None:
        caller_a = _caller_a_of(attempt)
    if binding is not None and direction is Direction.CALLBACK:
        caller_masked = binding.buyer_masked
    elif attempt is not None and attempt.caller_masked:
        caller_masked = attempt.caller_masked
    else:
        caller_masked = mask(raw_caller) if raw_caller else ""
    return CallRecord(
        system_name=cdr.system_name,
        uniqueid=cdr.uniqueid,
        linkedid=cdr.linkedid,
        shop_id=(binding.shop_id if binding else "") or (attempt.shop_id if attempt else "")
        or cdr.pn_shop,
        order_id=(binding.order_id if binding else "") or (attempt.order_id if attempt else "")
        or cdr.pn_order,
        binding_id=(binding.binding_id if binding else "")
        or (attempt.binding_id if attempt else "") or cdr.pn_binding,
        buyer_id=binding.buyer_id if binding else "",
        caller_a=caller_a,
        caller_masked=caller_masked,
        virtual_x=cdr.pn_x or (attempt.virtual_x if attempt else "")
        or (binding.virtual_x if binding else ""),
        buyer_masked=binding.buyer_masked if binding else "",
        start_utc=cdr.start,
        answer_utc=cdr.answer,
        end_utc=cdr.end,
        duration=cdr.duration,
        billsec=cdr.billsec,
        disposition=cdr.disposition,
        hangup_cause=cdr.hangup_cause,
        direction=direction,
        outcome=outcome,
        reason=reason,
        source=source,
        extension=(attempt.extension if attempt is not None else None) or cdr.pn_ext or None,
        mark=(attempt.mark if attempt is not None else "") or None,
    )


def _caller_a_of(attempt: CallAttempt) -> str:
    """A merchant call's A, or the A a bridged callback reached; "" otherwise."""
    if attempt.direction is Direction.MERCHANT:
        return attempt.caller_a
    if attempt.direction is Direction.CALLBACK and attempt.action is Action.BRIDGE:
        return attempt.caller_a
    return ""


def record_from_attempt(attempt: CallAttempt, binding: BindingView | None) -> CallRecord:
    """Close an attempt whose CDR never arrived (see the module docstring)."""
    rejected = attempt.action is Action.REJECT
    if attempt.reason is Reason.ROUTING_ERROR:
        outcome = Outcome.FAILED
    else:
        outcome = Outcome.REJECTED if rejected else Outcome.UNKNOWN
    return CallRecord(
        system_name=attempt.system_name,
        uniqueid=attempt.uniqueid,
        linkedid=attempt.linkedid or attempt.uniqueid,
        shop_id=attempt.shop_id,
        order_id=attempt.order_id,
        binding_id=attempt.binding_id,
        buyer_id=binding.buyer_id if binding else "",
        caller_a=_caller_a_of(attempt),
        caller_masked=attempt.caller_masked,
        virtual_x=attempt.virtual_x,
        buyer_masked=binding.buyer_masked if binding else "",
        start_utc=attempt.at,
        answer_utc=None,
        end_utc=attempt.at,
        duration=0,
        billsec=0,
        disposition="NO CDR",
        hangup_cause=attempt.reason.hangup_cause if rejected else None,
        direction=attempt.direction,
        outcome=outcome,
        reason=attempt.reason.value,
        source=Source.ATTEMPT,
        extension=attempt.extension or None,
        mark=attempt.mark or None,
    )


# ---- tamper-evident chain

def _canonical(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def row_digest(prev_hash: str, chain_seq: int, columns: Mapping[str, object],
               ingested_at: datetime) -> str:
    """SHA-256 over the previous row's hash, the row's chain position and every column
    (``CallRecord.columns()`` when writing; the stored values as they are when verifying, so
    a tampered value is reported, not refused)."""
    body = {k: _canonical(v) for k, v in columns.items()
            if not (k in OPTIONAL_COLUMNS and v is None)}
    body["chain_seq"] = chain_seq
    body["ingested_at"] = _canonical(ingested_at)
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


# ---- the shop's query

@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


def resolve_window(now: datetime, since: datetime | None, until: datetime | None) -> Window:
    """Default the last day; never more than 30 days back (an error, not a silent clip)."""
    until = until or now
    since = since or (until - DEFAULT_WINDOW)
    if since.tzinfo is None or until.tzinfo is None:
        raise CallLogQueryError("since/until need a time zone (e.g. 2026-11-28T12:00:00Z)")
    if since < now - MAX_LOOKBACK:
        raise CallLogQueryError(
            f"call records can be queried at most 30 days back (since must be on or after "
            f"{(now - MAX_LOOKBACK).astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC)")
    if since >= until:
        raise CallLogQueryError("since must be before until")
    return Window(since=since.astimezone(UTC), until=until.astimezone(UTC))


def encode_cursor(start_utc: datetime, row_id: int) -> str:
    raw = f"{start_utc.astimezone(UTC).isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, row_id = raw.partition("|")
        at = datetime.fromisoformat(when)
        if at.tzinfo is None:
            raise ValueError(when)
        return at, int(row_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CallLogQueryError("invalid cursor") from exc


def render_link(template: str, values: Mapping[str, str]) -> str:
    """Fill a link template (``{order_id}``, ``{buyer_id}``, ``{shop_id}`` ...), URL-quoted;
    empty when a needed value is missing."""
    quoted = {k: quote(v, safe="") for k, v in values.items()}
    try:
        link = template.format_map(quoted)
    except (KeyError, IndexError, ValueError):
        return ""
    needed = [k for k in quoted if "{" + k + "}" in template]
    return "" if any(not values[k] for k in needed) else link


@dataclass(frozen=True)
class CallLogQuery:
    """A shop's call-log query (the CLI adds order, caller and outcome filters)."""

    shop_id: str
    since: datetime | None = None
    until: datetime | None = None
    order_id: str | None = None
    caller: str | None = None  # the shop's caller number A (E.164)
    outcome: str | None = None
    reason: str | None = None  # a Reason value
    direction: str | None = None  # a Direction value
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True)
class ExportRow:
    """A record as exported for auditors: with its chain position and hash."""

    id: int
    chain_seq: int
    record: CallRecord
    row_hash: str


@dataclass(frozen=True)
class CallLogEntry:
    """One line of a shop's call log, as the CLI and the HTTP API show it."""

    id: int
    record: CallRecord
    reason_text: str
    order_link: str
    chat_link: str
    recording_id: str = ""  # the call's stored recording (routing.recording), if any


@dataclass(frozen=True)
class CallLogPage:
    entries: tuple[CallLogEntry, ...]
    next_cursor: str | None
    window: Window


@dataclass(frozen=True)
class LinkTemplates:
    order: str
    chat: str

    def entry(self, row_id: int, record: CallRecord) -> CallLogEntry:
        values = {"order_id": record.order_id, "buyer_id": record.buyer_id,
                  "shop_id": record.shop_id, "binding_id": record.binding_id}
        return CallLogEntry(
            id=row_id, record=record, reason_text=record.reason_text,
            order_link=render_link(self.order, values) if record.order_id else "",
            chat_link=render_link(self.chat, values) if record.buyer_id else "")
