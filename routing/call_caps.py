"""Call caps: how many calls one caller number A, one buyer B and one virtual number X may
take part in per rolling hour and per rolling day. Pure: the caps, who a call counts against,
and which cap a set of counts breaks; the counting itself is the counter's (Redis or SQL,
atomic, on the store's own clock)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from routing.errors import InvalidInput
from routing.reasons import Reason

HOUR_SECONDS = 3_600
DAY_SECONDS = 86_400


class CapSubject(StrEnum):
    CALLER = "caller"  # the shop's caller number A
    BUYER = "buyer"  # the buyer B (counted under its blind index, never in clear)
    NUMBER = "number"  # the virtual number X

    @property
    def reason(self) -> Reason:
        return _REASONS[self]


_REASONS = {CapSubject.CALLER: Reason.CAP_CALLER, CapSubject.BUYER: Reason.CAP_BUYER,
            CapSubject.NUMBER: Reason.CAP_NUMBER}


@dataclass(frozen=True)
class Cap:
    """Calls allowed per rolling hour and per rolling day (0: no cap)."""

    hour: int = 0
    day: int = 0

    @property
    def any(self) -> bool:
        return self.hour > 0 or self.day > 0


@dataclass(frozen=True)
class CallCaps:
    caller: Cap = Cap()
    buyer: Cap = Cap()
    number: Cap = Cap()

    def of(self, subject: CapSubject) -> Cap:
        return {CapSubject.CALLER: self.caller, CapSubject.BUYER: self.buyer,
                CapSubject.NUMBER: self.number}[subject]

    @property
    def any(self) -> bool:
        return self.caller.any or self.buyer.any or self.number.any


NO_CAPS = CallCaps()


@dataclass(frozen=True)
class Counted:
    """One party of a call to count: ``key`` identifies it (A, X in E.164; B's blind index)."""

    subject: CapSubject
    key: str
    cap: Cap


def to_count(caps: CallCaps, *, caller_a: str, buyer_key: str, virtual_x: str
             ) -> tuple[Counted, ...]:
    """The parties of one call that have a cap, in the order their reasons are given."""
    parties = ((CapSubject.CALLER, caller_a), (CapSubject.BUYER, buyer_key),
               (CapSubject.NUMBER, virtual_x))
    return tuple(Counted(s, key, caps.of(s)) for s, key in parties if caps.of(s).any and key)


def broken(counted: Sequence[Counted], counts: Mapping[str, tuple[int, int]]
           ) -> CapSubject | None:
    """The first party whose cap one more call would exceed, given ``counts`` (key -> calls
    in the last hour, calls in the last day, before this one)."""
    for party in counted:
        hour, day = counts.get(party.key, (0, 0))
        if (party.cap.hour and hour >= party.cap.hour) or (party.cap.day and day >= party.cap.day):
            return party.subject
    return None


class CallCounter(Protocol):
    """Counts a call against every party's cap, atomically: either all are under their caps
    and the call is counted for each, or nothing is counted and the broken party is returned.
    Windows are measured on the counter's own clock (never two clocks compared). A fault
    raises ``StoreUnavailable`` (the call is refused with ``routing_error``)."""

    async def admit(self, counted: Sequence[Counted]) -> CapSubject | None: ...


def parse_caps(text: str) -> CallCaps:
    """``caller=HOUR/DAY,buyer=HOUR/DAY,number=HOUR/DAY`` (any subset; 0 = no cap; empty text:
    no caps), e.g. ``caller=20/100,number=30/300``."""
    caps: dict[str, Cap] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        hour, _, day = value.partition("/")
        name = name.strip().lower()
        if name not in {s.value for s in CapSubject} or name in caps:
            raise InvalidInput(f"call caps: {part!r} is not caller=, buyer= or number= "
                               "(each once)")
        try:
            cap = Cap(int(hour), int(day))
        except ValueError:
            raise InvalidInput(f"call caps: {part!r} is not NAME=HOUR/DAY "
                               "(whole numbers)") from None
        if cap.hour < 0 or cap.day < 0:
            raise InvalidInput(f"call caps: {part!r} is negative")
        caps[name] = cap
    return CallCaps(**caps)


def format_caps(caps: CallCaps) -> str:
    return ",".join(f"{s.value}={caps.of(s).hour}/{caps.of(s).day}" for s in CapSubject
                    if caps.of(s).any)
