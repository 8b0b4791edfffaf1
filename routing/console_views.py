"""What the console's operations and audit pages show, as plain values, and the ports they are
read through (``binding_store.console_reader`` implements them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Protocol

from routing.call_log_views import CallRecord


@dataclass(frozen=True)
class DayCalls:
    """One day's calls: bridged ones, and the refused ones by reason code."""

    day: date
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class PoolUse:
    """One region's numbers of one mode (``axb`` or ``extension``): ``free`` can be allocated
    now, ``in_use`` are in an active binding (an extension number: in at least one),
    ``cooling_down`` were released within the cool-down (held back from the caller they
    served), ``quarantined``/``retired`` are out of service. ``slots`` are the extensions of
    the in-service extension numbers, ``slots_in_use`` those an active binding holds."""

    region: str
    free: int = 0
    in_use: int = 0
    cooling_down: int = 0
    quarantined: int = 0
    retired: int = 0
    mode: str = "axb"
    slots: int = 0
    slots_in_use: int = 0

    @property
    def total(self) -> int:
        return self.free + self.in_use + self.cooling_down + self.quarantined + self.retired


def pool_by(pool: Sequence[PoolUse], key: Callable[[PoolUse], str]) -> list[PoolUse]:
    """``pool``'s counts summed per ``key`` (its region, or its mode), in key order; each
    sum's ``region`` is the key (its ``mode`` means nothing)."""
    totals: dict[str, PoolUse] = {}
    for p in pool:
        k = key(p)
        t = totals.get(k, PoolUse(region=k))
        totals[k] = replace(
            t, free=t.free + p.free, in_use=t.in_use + p.in_use,
            cooling_down=t.cooling_down + p.cooling_down,
            quarantined=t.quarantined + p.quarantined, retired=t.retired + p.retired,
            slots=t.slots + p.slots, slots_in_use=t.slots_in_use + p.slots_in_use)
    return [totals[k] for k in sorted(totals)]


@dataclass(frozen=True)
class ChainFinding:
    """One thing ``privnum cdr verify`` found: ``kind`` (altered, deleted, inserted), the
    chain ``position`` (sequence number) and the ``shop_id`` of the row concerned, ``None``
    when the rows are gone (a deletion: whose they were is no longer known)."""

    kind: str
    position: int | None
    shop_id: str | None
    detail: str  # the line as ``privnum cdr verify`` prints it


@dataclass(frozen=True)
class ChainCheck:
    """The call log's tamper-evident chain (one chain over every shop's records), as
    ``privnum cdr verify`` reports it. ``findings`` are those the reader may see;
    ``elsewhere`` counts the others (in shops it does not audit), ``more`` those not listed."""

    ok: bool
    rows: int
    findings: tuple[ChainFinding, ...] = ()
    elsewhere: int = 0
    more: int = 0


@dataclass(frozen=True)
class StoredCall:
    id: int
    record: CallRecord


class ConsoleReader(Protocol):
    async def call(self, row_id: int) -> StoredCall | None:
        """One call record by its id, ``None`` when there is none."""
        ...

    async def calls_per_day(self, since: datetime, until: datetime, zone: tzinfo
                            ) -> list[DayCalls]:
        """Records of ``[since, until)`` counted per day (in ``zone``) and by
        ``"bridged"`` or the refusal's reason code (``"unknown"`` when none was recorded),
        oldest day first."""
        ...

    async def pool_use(self, now: datetime, cooldown: timedelta) -> list[PoolUse]:
        """The pool per region and mode, by region then mode."""
        ...

    async def verify_chain(self) -> ChainCheck:
        """Walk the whole chain; every finding."""
        ...
