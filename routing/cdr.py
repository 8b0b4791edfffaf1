"""Interpreting Asterisk CDRs: typed events, zone-less timestamps, the billable leg.

Pure: input is a mapping of Asterisk *CDR variable names* (``src``, ``start``, ``uniqueid``,
``pn_x`` ...) to text, as produced from an AMI ``Cdr`` event (header names translated back by
the listener) or from a row of the safety-net CSV. The names of privnum's own custom fields come
from the dialplan contract (``agi/channel_vars.py``) and are passed in as :class:`CdrFieldNames`,
never redefined here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo

from routing.call_ids import is_call_id, number_forms
from routing.errors import CdrFormatError
from routing.number_classes import DEFAULT_NUMBER_CLASSES, NumberClasses
from routing.reasons import Reason

# Asterisk's standard CDR variables and the header cdr_manager gives each (Asterisk's names).
STANDARD_AMI_HEADERS: dict[str, str] = {
    "accountcode": "AccountCode",
    "src": "Source",
    "dst": "Destination",
    "dcontext": "DestinationContext",
    "clid": "CallerID",
    "channel": "Channel",
    "dstchannel": "DestinationChannel",
    "lastapp": "LastApplication",
    "lastdata": "LastData",
    "start": "StartTime",
    "answer": "AnswerTime",
    "end": "EndTime",
    "duration": "Duration",
    "billsec": "BillableSeconds",
    "disposition": "Disposition",
    "amaflags": "AMAFlags",
    "uniqueid": "UniqueID",
    "userfield": "UserField",
}

# ASCII digits only: a Unicode ``\d`` would also take other scripts' digits (datetime refuses).
_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d{1,6})?$", re.ASCII)
# Counters (duration, billsec, sequence) are stored in 32-bit integer columns.
_INT_RE = re.compile(r"^[0-9]{1,10}$")
_INT_MAX = 2**31 - 1
_EXT_RE = re.compile(r"^[0-9]{1,4}$")
_Q850_MAX = 127
# Best disposition first, for merging forks of one channel's CDR.
_DISPOSITION_RANK = ("ANSWERED", "BUSY", "NO ANSWER", "CONGESTION", "FAILED")
# Q.850 cause when the CDR does not carry one (no Hangup(cause) as last application).
_CAUSE_BY_DISPOSITION = {"ANSWERED": 16, "BUSY": 17, "NO ANSWER": 19, "CONGESTION": 34,
                         "FAILED": 41}


@dataclass(frozen=True)
class CdrFieldNames:
    """CDR variable names of privnum's custom fields (from ``agi.channel_vars``)."""

    binding: str
    shop: str
    order: str
    x: str
    reason: str
    direction: str
    caller: str
    ext: str = ""  # extension mode: the extension entered (a later field; "" = not read)
    recording: str = ""

    @property
    def all(self) -> tuple[str, ...]:
        return (self.binding, self.shop, self.order, self.x, self.reason, self.direction,
                self.caller, *((self.ext,) if self.ext else ()))


@dataclass(frozen=True)
class CdrEvent:
    """One Asterisk CDR, times in UTC. Raw numbers (``src``, ``dst``, ``pn_caller``) may be a
    buyer's: they are kept out of ``repr`` and must never be stored or logged unmasked."""

    system_name: str
    uniqueid: str
    linkedid: str
    sequence: int
    start: datetime
    answer: datetime | None
    end: datetime
    duration: int
    billsec: int
    disposition: str
    lastapp: str
    hangup_cause: int | None
    accountcode: str = ""
    userfield: str = ""
    pn_binding: str = ""
    pn_shop: str = ""
    pn_order: str = ""
    pn_x: str = ""
    pn_reason: str = ""
    pn_direction: str = ""
    pn_ext: str = ""  # extension mode: the extension entered ("" for AXB calls)
    pn_recording: str = ""  # the recording of this call (routing.recording), if one was made
    src: str = field(default="", repr=False)
    dst: str = field(default="", repr=False)
    pn_caller: str = field(default="", repr=False)
    channel: str = field(default="", repr=False)
    forks: int = 1

    @property
    def key(self) -> tuple[str, str]:
        return (self.system_name, self.uniqueid)

    @property
    def is_call_record(self) -> bool:
        """True for the leg privnum's dialplan tagged: the one call record of an attempt.

        The dialplan copies the routing facts into the CDR of the channel that ran the AGI
        (bridge, reject and fail paths alike); Local-channel halves and the outbound legs carry
        none of them.
        """
        return any((self.pn_x, self.pn_binding, self.pn_reason, self.pn_caller, self.pn_shop))


def local_to_utc(text: str, zone: tzinfo) -> datetime | None:
    """Asterisk's zone-less local ``YYYY-MM-DD HH:MM:SS[.ffffff]`` to an aware UTC datetime.

    Empty text (e.g. no answer time) is ``None``. Ambiguous wall times in a DST fall-back hour
    resolve to the first occurrence (``fold=0``), as Asterisk gives no hint either.
    """
    text = text.strip()
    if not text:
        return None
    match = _TIME_RE.match(text)
    if match is None:
        raise CdrFormatError(f"not an Asterisk CDR time: {_shape(text)!r}")
    day, clock, frac = match.groups()
    try:
        naive = datetime.fromisoformat(f"{day}T{clock}{frac or ''}")
        return naive.replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # month 13, 25:61:61, year 1 east of UTC
        raise CdrFormatError(f"Asterisk CDR time out of range: {_shape(text)!r}") from exc


def _shape(text: str) -> str:
    """What a bad field looked like, every digit shown as 9: never a number from the CDR
    (a shifted CSV column may put a caller's number where a time belongs)."""
    return "".join("9" if ch.isdigit() else ch for ch in text[:40])


def _int(text: str, default: int = 0) -> int:
    """A non-negative ASCII counter that fits 32 bits; anything else is ``default``."""
    text = text.strip()
    if not _INT_RE.match(text):
        return default
    value = int(text)
    return value if value <= _INT_MAX else default


def _cause(lastapp: str, lastdata: str, disposition: str, reason: str) -> int | None:
    """Q.850 cause: ``Hangup(n)``'s argument when it is one (0-127); else, for a call privnum
    refused, the cause its dialplan hangs up with for that reason (the safety-net CSV carries
    no ``lastdata``, so a reconciled record gets the same cause as one from AMI); else the
    disposition's."""
    if lastapp.lower() == "hangup":
        cause = _int(lastdata, -1)
        if 0 <= cause <= _Q850_MAX:
            return cause
    refused = _REASONS.get(reason)
    if refused is not None and refused is not Reason.BRIDGED:
        return refused.hangup_cause
    return _CAUSE_BY_DISPOSITION.get(disposition)


_REASONS = {r.value: r for r in Reason}


def _e164(number: str, classes: NumberClasses) -> str:
    """X as every other record holds it (the fail path copies the dialled digits as they came)."""
    return classes.dialled(number) or number if number else ""


def _extension(text: str) -> str:
    """An extension as stored: 1-4 ASCII digits; anything else (a shifted CSV column, a
    number) is dropped, never kept."""
    return text if _EXT_RE.match(text) else ""


def _stand_in_id(start: datetime, sequence: int) -> str:
    """The id of a CDR whose own is not one we keep (see ``routing.call_ids``): derived from
    what identifies the record without naming anyone (its start second and Asterisk's CDR
    sequence), so the AMI event and the CSV row of one call get the same one."""
    seed = f"{start.replace(microsecond=0).isoformat()}|{sequence}".encode()
    return "cdr-" + hashlib.sha256(seed).hexdigest()[:32]


def parse_cdr(fields: Mapping[str, str], names: CdrFieldNames, zone: tzinfo,
              system_name: str = "", classes: NumberClasses = DEFAULT_NUMBER_CLASSES
              ) -> CdrEvent:
    """Build a :class:`CdrEvent` from CDR variable names -> text (missing keys are empty).
    ``classes`` read X in the form the dialplan's fail path copies from the dialled digits.

    ``uniqueid`` and ``linkedid`` are Asterisk's when they are ids we keep; otherwise a
    stand-in (uniqueid) or the uniqueid (linkedid) takes their place.
    """

    def get(key: str) -> str:
        value = fields.get(key, "")
        return value.strip() if isinstance(value, str) else ""

    raw_uniqueid = get("uniqueid")
    if not raw_uniqueid:
        raise CdrFormatError("CDR without uniqueid")
    start = local_to_utc(get("start"), zone)
    end = local_to_utc(get("end"), zone)
    if start is None:
        raise CdrFormatError(f"CDR {_shape(raw_uniqueid)} without start time")
    # The caller's number in its three places (not dst: X is nobody's, see routing.call_ids).
    numbers = tuple(form for key in ("src", names.caller, "clid")
                    for form in number_forms(get(key)))
    sequence = _int(get("sequence"))
    uniqueid = (raw_uniqueid if is_call_id(raw_uniqueid, numbers=numbers)
                else _stand_in_id(start, sequence))
    linkedid = get("linkedid")
    if not linkedid or not is_call_id(linkedid, numbers=numbers):
        linkedid = uniqueid
    answer = local_to_utc(get("answer"), zone)
    disposition = get("disposition").upper()
    if disposition not in _DISPOSITION_RANK:  # stored: Asterisk's words only, never free text
        disposition = ""
    lastapp = get("lastapp")
    cause = _cause(lastapp, get("lastdata"), disposition, get(names.reason))
    return CdrEvent(
        system_name=get("systemname") or system_name,
        uniqueid=uniqueid,
        linkedid=linkedid,
        sequence=sequence,
        start=start,
        answer=answer,
        end=end or start,
        duration=_int(get("duration")),
        billsec=_int(get("billsec")),
        disposition=disposition,
        lastapp=lastapp,
        hangup_cause=cause,
        accountcode=get("accountcode"),
        userfield=get("userfield"),
        pn_binding=get(names.binding),
        pn_shop=get(names.shop),
        pn_order=get(names.order),
        pn_x=_e164(get(names.x), classes),
        pn_reason=get(names.reason),
        pn_direction=get(names.direction),
        pn_ext=_extension(get(names.ext)) if names.ext else "",
        pn_recording=get(names.recording) if names.recording else "",
        src=get("src"),
        dst=get("dst"),
        pn_caller=get(names.caller),
        channel=get("channel"),
    )


def ami_to_fields(headers: Mapping[str, str], custom_headers: Mapping[str, str]
                  ) -> dict[str, str]:
    """AMI ``Cdr`` headers -> CDR variable names. ``custom_headers`` is cdr_manager's
    ``[mappings]`` (CDR variable -> header). Header matching is case-insensitive."""
    lower = {k.lower(): v for k, v in headers.items() if isinstance(v, str)}
    out: dict[str, str] = {}
    for variable, header in (*STANDARD_AMI_HEADERS.items(), *custom_headers.items(),
                             ("systemname", "SystemName")):
        out[variable] = lower.get(header.lower(), "")
    return out


def merge_forks(first: CdrEvent, second: CdrEvent) -> CdrEvent:
    """Combine two CDRs of the same channel (same uniqueid).

    Asterisk forks a channel's CDR when its bridge changes (e.g. a Local channel optimised away)
    and dispatches the forks back to back; together they are one call. Durations add up, times
    span both, the best disposition wins, routing facts come from whichever fork has them.
    """
    a, b = sorted((first, second), key=lambda e: e.sequence)
    answers = [t for t in (a.answer, b.answer) if t is not None]
    rank = min(_DISPOSITION_RANK.index(d) if d in _DISPOSITION_RANK else 99
               for d in (a.disposition, b.disposition))
    disposition = _DISPOSITION_RANK[rank] if rank < 99 else b.disposition or a.disposition
    return replace(
        a,
        start=min(a.start, b.start),
        answer=min(answers) if answers else None,
        end=max(a.end, b.end),
        duration=a.duration + b.duration,
        billsec=a.billsec + b.billsec,
        disposition=disposition,
        lastapp=b.lastapp or a.lastapp,
        hangup_cause=b.hangup_cause if b.hangup_cause is not None else a.hangup_cause,
        userfield=b.userfield or a.userfield,
        pn_binding=b.pn_binding or a.pn_binding,
        pn_shop=b.pn_shop or a.pn_shop,
        pn_order=b.pn_order or a.pn_order,
        pn_x=b.pn_x or a.pn_x,
        pn_reason=b.pn_reason or a.pn_reason,
        pn_direction=b.pn_direction or a.pn_direction,
        pn_ext=b.pn_ext or a.pn_ext,
        pn_caller=b.pn_caller or a.pn_caller,
        pn_recording=b.pn_recording or a.pn_recording,
        forks=a.forks + b.forks,
    )


def billable(events: Iterable[CdrEvent]) -> list[CdrEvent]:
    """The call records among ``events``: tagged legs only, forks of one channel merged,
    in first-seen order. Untagged legs (Local halves, outbound legs) are dropped."""
    merged: dict[tuple[str, str], CdrEvent] = {}
    for event in events:
        if not event.is_call_record:
            continue
        seen = merged.get(event.key)
        merged[event.key] = event if seen is None else merge_forks(seen, event)
    return list(merged.values())


# ---- the raw AMI byte stream (fixtures, replay bench, the fake AMI server)

def split_ami_stream(data: bytes) -> tuple[str, list[dict[str, str]]]:
    """Split a raw AMI stream into its banner line and its messages (header dicts).

    Header names keep their case; a repeated header keeps its last value; lines without
    ``": "`` (e.g. ``PeerAccount:`` with an empty value) give an empty value.
    """
    text = data.decode("utf-8", "replace")
    banner, _, rest = text.partition("\r\n")
    return banner, list(iter_ami_messages(rest))


def iter_ami_messages(text: str) -> Iterator[dict[str, str]]:
    for block in text.split("\r\n\r\n"):
        headers: dict[str, str] = {}
        for line in block.split("\r\n"):
            if not line:
                continue
            key, sep, value = line.partition(":")
            if sep:
                headers[key.strip()] = value[1:] if value.startswith(" ") else value
        if headers:
            yield headers


def encode_ami_message(headers: Mapping[str, str]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
