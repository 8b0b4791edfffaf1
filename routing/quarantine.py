"""Quarantined virtual numbers: a number X taken out of allocation at once (after complaints,
a carrier's notice), its active bindings left to run until they expire or are switched away.

Pure: the view, the reason check and the events (``number.quarantined``,
``number.quarantine_released``; platform events, no shop)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from routing.errors import InvalidInput
from routing.events import Event, EventType
from routing.model import PoolState

MAX_REASON = 200


@dataclass(frozen=True)
class QuarantineView:
    number: str
    state: PoolState
    reason: str
    active_bindings: int  # still routing calls; they end at their expiry
    changed: bool  # False: it already was in that state


def check_reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise InvalidInput("a quarantine needs a reason (--reason)")
    if len(text) > MAX_REASON:
        raise InvalidInput(f"the reason is longer than {MAX_REASON} characters")
    return text


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def quarantine_event(view: QuarantineView, at: datetime, actor: str) -> Event:
    kind = (EventType.NUMBER_QUARANTINED if view.state is PoolState.QUARANTINED
            else EventType.NUMBER_QUARANTINE_RELEASED)
    return Event(kind, f"number:{view.number}", "", at, {
        "virtual_x": view.number, "state": view.state.value, "reason": view.reason or None,
        "active_bindings": view.active_bindings, "actor": actor, "at": _iso(at)})
