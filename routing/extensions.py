"""Extension mode: one virtual number X serves many bindings, each with its own extension.

Pure rules, no I/O: which mode a reveal uses, which (X, extension) slot a new binding gets
(the store runs the same rules as SQL; tests check the two agree), how a dialled number
splits into X and extension, what a call to an extension X needs next, and how (X,
extension) is shown and dialled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

MIN_EXTENSION_LENGTH = 1
MAX_EXTENSION_LENGTH = 4
MAX_EXTENSION_TRIES = 3
_NEVER = datetime.min.replace(tzinfo=UTC)


class NumberMode(StrEnum):
    """How a pool number is used: one binding per (A, X) and (B, X), or (X, extension)."""

    AXB = "axb"
    EXTENSION = "extension"


class ModePolicy(StrEnum):
    """Which mode(s) a reveal may use, in order."""

    AXB_THEN_EXTENSION = "axb_then_extension"  # the default: extensions only as overflow
    EXTENSION_THEN_AXB = "extension_then_axb"
    AXB = "axb"
    EXTENSION = "extension"


def modes_to_try(policy: ModePolicy, requested: NumberMode | None = None
                 ) -> tuple[NumberMode, ...]:
    """The modes an allocation tries, in order: a mode the request names alone, else the
    policy's order."""
    if requested is not None:
        return (requested,)
    return {
        ModePolicy.AXB_THEN_EXTENSION: (NumberMode.AXB, NumberMode.EXTENSION),
        ModePolicy.EXTENSION_THEN_AXB: (NumberMode.EXTENSION, NumberMode.AXB),
        ModePolicy.AXB: (NumberMode.AXB,),
        ModePolicy.EXTENSION: (NumberMode.EXTENSION,),
    }[policy]


def check_extension_length(length: int) -> int:
    if not MIN_EXTENSION_LENGTH <= length <= MAX_EXTENSION_LENGTH:
        raise ValueError(f"extension length must be {MIN_EXTENSION_LENGTH} to "
                         f"{MAX_EXTENSION_LENGTH} digits, got {length}")
    return length


def extensions_of(length: int) -> list[str]:
    """Every extension of an X with extensions of ``length`` digits (fixed length, so the
    dialplan's collection ends by itself after the last digit)."""
    check_extension_length(length)
    return [f"{i:0{length}d}" for i in range(10 ** length)]


# -- allocation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExtensionSlot:
    """One (X, extension) pair of an extension-mode pool number."""

    number: str
    extension: str
    region: str
    last_released_at: datetime | None


def slot_order(slot: ExtensionSlot, preferred_region: str | None
               ) -> tuple[int, int, datetime, str, str]:
    """Preferred region first, never-released next, then least recently released, then by
    number and extension (the AXB order, per slot)."""
    in_region = 0 if preferred_region is None or slot.region == preferred_region else 1
    never = 0 if slot.last_released_at is None else 1
    return (in_region, never, slot.last_released_at or _NEVER, slot.number, slot.extension)


def choose_extension_slot(
    slots: Iterable[ExtensionSlot],
    *,
    held: frozenset[tuple[str, str]],
    released_to_a: Mapping[tuple[str, str], datetime],
    now: datetime,
    cooldown: timedelta,
    preferred_region: str | None = None,
) -> ExtensionSlot | None:
    """A slot no active binding holds, whose release from A (if any) is at least ``cooldown``
    ago; in :func:`slot_order`. ``None``: no slot is free for A."""
    ok = [s for s in slots
          if (s.number, s.extension) not in held
          and _cooled(released_to_a.get((s.number, s.extension)), now, cooldown)]
    return min(ok, key=lambda s: slot_order(s, preferred_region), default=None)


def _cooled(last: datetime | None, now: datetime, cooldown: timedelta) -> bool:
    return last is None or now - last >= cooldown


# -- the dialled number ----------------------------------------------------------------------
def split_dialled(raw: str, lengths: Mapping[str, int]) -> tuple[str, str] | None:
    """X and extension when ``raw`` (digits as dialled, maybe with a leading +) is an
    extension number's digits immediately followed by exactly its extension length of
    digits; ``lengths`` maps the digits of every extension-mode X as they may be dialled
    (national and E.164 forms) to its extension length. ``None`` otherwise."""
    for length in range(MIN_EXTENSION_LENGTH, MAX_EXTENSION_LENGTH + 1):
        if len(raw) <= length:
            break
        head, tail = raw[:-length], raw[-length:]
        if tail.isdigit() and lengths.get(head) == length:
            return head, tail
    return None


class ExtensionStep(StrEnum):
    """What a call to an extension X needs next."""

    COLLECT = "collect"  # ask (again) for the extension
    ROUTE = "route"  # route on (X, extension)
    INVALID = "invalid"  # last try had a wrong extension: reject extension_invalid
    TIMEOUT = "timeout"  # last try had no digits: reject extension_timeout


@dataclass(frozen=True)
class Entry:
    """What the dialplan collected: ``digits`` (empty on a time-out) on try ``attempt``
    (1-based); ``None`` before the first prompt."""

    digits: str
    attempt: int


def extension_step(entry: Entry | None, length: int, known: bool,
                   max_tries: int = MAX_EXTENSION_TRIES) -> ExtensionStep:
    """The next step of a call to an extension X. ``known``: the entered digits name an
    extension that routes (or fails) on its own terms; unknown or malformed digits are
    invalid. A try that failed before the last one asks again."""
    if entry is None:
        return ExtensionStep.COLLECT
    if entry.digits and len(entry.digits) == length and entry.digits.isdigit() and known:
        return ExtensionStep.ROUTE
    if entry.attempt < max_tries:
        return ExtensionStep.COLLECT
    return ExtensionStep.INVALID if entry.digits else ExtensionStep.TIMEOUT


def well_formed(digits: str, length: int) -> bool:
    return len(digits) == length and digits.isdigit()


def callback_needs_extension(active_extensions: Sequence[str]) -> bool:
    """A buyer calling an extension X back reaches the shop directly when exactly one of
    their active bindings is on that X; with several, they must say which one."""
    return len(set(active_extensions)) != 1


_WRITTEN_EXTENSION = re.compile(r"\s*(?:,|;|#|ext\.?|x|转|分机)\s*\d{1,4}\s*$", re.IGNORECASE)


def without_extension(text: str) -> list[str]:
    """What a number written with an extension may be without it, most likely first: the
    text before a written extension (``170 0000 0001 ext. 1234``, ``17000000001,1234``,
    ``...转1234``), else the text with 1-4 trailing digits removed (X and its extension
    written together). The shipping-phone check tries each: a number with an extension is
    still a privacy number."""
    m = _WRITTEN_EXTENSION.search(text)
    if m:
        return [text[:m.start()]]
    digits = text.rstrip()
    return [digits[:-n] for n in range(1, MAX_EXTENSION_LENGTH + 1)
            if len(digits) > n and digits[-n:].isdigit()]


# -- showing and dialling --------------------------------------------------------------------
def display(national_x: str, extension: str) -> str:
    """``170 0000 0001 ext. 1234``: X grouped 3-4-4 (as Chinese 11-digit numbers are
    written; other lengths ungrouped), then the extension."""
    grouped = (f"{national_x[:3]} {national_x[3:7]} {national_x[7:]}"
               if len(national_x) == 11 and national_x.isdigit() else national_x)
    return f"{grouped} ext. {extension}" if extension else grouped


def dial_string(dialable_x: str, extension: str) -> str:
    """What a phone dials to reach the binding when DTMF goes after answer: X, a pause
    (``,``, as phones and RFC 3966 ``postd`` write it), then the extension."""
    return f"{dialable_x},{extension}" if extension else dialable_x
