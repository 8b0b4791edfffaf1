"""The service's clock: real UTC time, or, for end-to-end tests only, real time shifted so that
it starts from a chosen instant (``testing.clock``, honoured only by ``privnum serve
--allow-test-clock``).

The shifted clock still advances with real time, so timeouts, deadlines and rolling windows
behave as in production; only the service's idea of "now" is moved, which is what a test of
time-dependent rules (quiet hours) needs without waiting for the hour or touching the host's
clock. Built once in the entry point and passed to the composition root.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from routing.errors import InvalidInput

Clock = Callable[[], datetime]

_OFFSET = re.compile(r"^([+-])(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
EXAMPLES = "an ISO instant with its zone, e.g. 2030-01-07T02:00:00Z, or an offset, e.g. +5h30m"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ShiftedClock:
    """Real UTC time plus a fixed offset."""

    offset: timedelta

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    @property
    def spec(self) -> str:
        """The offset as ``testing.clock`` reads it (how a worker process gets the very same
        clock as its parent, whatever instant the parent was given)."""
        seconds = self.offset.total_seconds()
        return f"{'-' if seconds < 0 else '+'}{abs(seconds):.6f}s"


def parse_clock(spec: str) -> datetime | timedelta:
    """``testing.clock``: an ISO 8601 instant with a zone (the clock starts there) or a signed
    offset ``[+-][Nd][Nh][Nm][N[.N]s]`` from real time. Else InvalidInput."""
    text = spec.strip()
    found = _OFFSET.match(text)
    if found is not None and any(found.groups()[1:]):
        sign, days, hours, minutes, seconds = found.groups()
        offset = timedelta(days=int(days or 0), hours=int(hours or 0),
                           minutes=int(minutes or 0), seconds=float(seconds or 0))
        return -offset if sign == "-" else offset
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"clock {text!r} is neither {EXAMPLES}") from None
    if instant.tzinfo is None:
        raise InvalidInput(f"clock {text!r} has no zone: add Z or +HH:MM ({EXAMPLES})")
    return instant.astimezone(UTC)


def service_clock(spec: str, real_now: datetime) -> ShiftedClock:
    """The clock ``spec`` asks for; an instant is reached by shifting ``real_now`` to it."""
    start = parse_clock(spec)
    return ShiftedClock(start if isinstance(start, timedelta) else start - real_now)
