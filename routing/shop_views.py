"""Shops, accounts, caller numbers and the virtual-number pool as plain values.

The store returns these (never ORM objects) so that the CLI and the HTTP API can use them
without touching SQL. Validation that needs no I/O lives here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from routing.errors import InvalidInput
from routing.model import AccountRole, CallerStatus, PoolState, ServiceState

POOL_IMPORT_BATCH = 1_000  # pool-import rows per transaction
MAX_BATCH_ROWS = 5_000  # a batch is one transaction; stays well inside the store's time limit
SHOP_LEVELS = ("L0", "L1", "L2", "L3", "L4", "L5")
DEFAULT_LEVEL = "L1"
MAX_ID = 64
MAX_NAME = 200
MAX_REGION = 32
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]*")


class BatchOutcome(StrEnum):
    """The per-row result of a batch caller-number add."""

    OK = "ok"
    INVALID_NUMBER = "invalid_number"
    NOT_MOBILE = "not_mobile"
    NOT_REVIEWED = "not_reviewed"
    DUPLICATE = "duplicate"
    NOT_SUB_ACCOUNT = "not_sub_account"

    @property
    def text(self) -> str:
        return _OUTCOME_TEXTS[self]


_OUTCOME_TEXTS = {
    BatchOutcome.OK: "added",
    BatchOutcome.INVALID_NUMBER: "not a valid phone number",
    BatchOutcome.NOT_MOBILE: "not a mobile number",
    BatchOutcome.NOT_REVIEWED: "the sub-account's phone has not passed the platform's review",
    BatchOutcome.DUPLICATE: "already a caller number of this shop",
    BatchOutcome.NOT_SUB_ACCOUNT: "not the phone of a sub-account of this shop",
}


def check_id(kind: str, value: str) -> str:
    """An id as the platform gives it: 1-64 characters, letters, digits and ``._:@-``."""
    text = value.strip()
    if not text or len(text) > MAX_ID or not _ID.fullmatch(text):
        raise InvalidInput(
            f"invalid {kind} id {value[:MAX_ID]!r}: use 1-{MAX_ID} letters, digits or ._:@-"
        )
    return text


def check_level(value: str) -> str:
    level = value.strip().upper()
    if level not in SHOP_LEVELS:
        raise InvalidInput(f"invalid shop level {value!r}: use one of {', '.join(SHOP_LEVELS)}")
    return level


def check_name(value: str) -> str:
    text = value.strip()
    if len(text) > MAX_NAME or any(ord(ch) < 32 for ch in text):
        raise InvalidInput(f"invalid name: at most {MAX_NAME} printable characters")
    return text


@dataclass(frozen=True)
class ShopView:
    id: str
    name: str
    level: str
    service_state: ServiceState
    agreement_version: str | None
    accepted_by: str | None
    accepted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    main_account_id: str | None = None
    main_phone: str | None = None
    timezone: str | None = None  # None: the default zone (see Shops.timezone_of)

    @property
    def enabled(self) -> bool:
        return self.service_state is ServiceState.ENABLED


@dataclass(frozen=True)
class EnableResult:
    """``changed`` is False when the shop was already enabled (the call was a no-op);
    ``ignored`` then says which of the values given were not applied, and why."""

    shop: ShopView
    changed: bool
    ignored: tuple[str, ...] = ()


def check_timezone(value: str) -> str:
    """An IANA time zone name (``Asia/Shanghai``)."""
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {value[:64]!r} (e.g. Asia/Shanghai, UTC)"
                           ) from None
    return name


def ignored_on_enable(shop: ShopView, *, main_phone: str | None, agreement_version: str | None,
                      accepted_by: str | None, name: str | None, level: str | None,
                      timezone: str | None) -> tuple[str, ...]:
    """What an enablement of the already enabled ``shop`` leaves as it was (``main_phone``
    normalised, the rest as given), one phrase each with what to use instead."""
    out: list[str] = []
    if main_phone is not None and main_phone != shop.main_phone:
        out.append(f"main phone (stays {shop.main_phone or 'unset'}; the main caller number "
                   "is set once, at the first enablement)")
    if agreement_version is not None and agreement_version.strip() != shop.agreement_version:
        out.append(f"agreement version {agreement_version.strip()!r} (the accepted one, "
                   f"{shop.agreement_version!r}, stays)")
    if accepted_by is not None and accepted_by.strip() != shop.accepted_by:
        out.append(f"accepted by {accepted_by.strip()!r} (stays {shop.accepted_by!r})")
    if name is not None and name.strip() != shop.name:
        out.append(f"name {name.strip()!r} (stays {shop.name!r})")
    if level is not None and level.strip().upper() != shop.level:
        out.append(f"level {level.strip().upper()} (stays {shop.level}; use set-level)")
    if timezone is not None and timezone.strip() != shop.timezone:
        out.append(f"time zone {timezone.strip()} (use set-timezone)")
    return tuple(out)


@dataclass(frozen=True)
class AccountView:
    id: str
    shop_id: str
    role: AccountRole
    name: str
    phone: str | None
    phone_reviewed: bool
    created_at: datetime


@dataclass(frozen=True)
class CallerView:
    id: int
    shop_id: str
    number: str
    account_id: str
    status: CallerStatus
    is_main: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class BatchRow:
    """One input row of a batch add: the raw number and, optionally, the account it is for."""

    line: int
    number: str
    account_id: str | None = None


@dataclass(frozen=True)
class BatchRowResult:
    line: int
    raw: str
    outcome: BatchOutcome
    number: str | None = None  # E.164 when the row parsed
    account_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is BatchOutcome.OK


@dataclass(frozen=True)
class BatchReport:
    rows: tuple[BatchRowResult, ...]

    @property
    def added(self) -> int:
        return sum(1 for r in self.rows if r.ok)

    @property
    def refused(self) -> int:
        return len(self.rows) - self.added

    def counts(self) -> dict[BatchOutcome, int]:
        out: dict[BatchOutcome, int] = {}
        for row in self.rows:
            out[row.outcome] = out.get(row.outcome, 0) + 1
        return out


@dataclass(frozen=True)
class PoolNumberView:
    number: str
    region: str
    state: PoolState
    last_released_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class PoolCounts:
    """Numbers per (region, state); ``by_state``/``by_region`` are the margins."""

    cells: dict[tuple[str, PoolState], int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.cells.values())

    @property
    def by_state(self) -> dict[PoolState, int]:
        out = dict.fromkeys(PoolState, 0)
        for (_, state), n in self.cells.items():
            out[state] += n
        return out

    @property
    def by_region(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (region, _), n in self.cells.items():
            out[region] = out.get(region, 0) + n
        return out


@dataclass(frozen=True)
class ImportRowError:
    line: int
    value: str
    message: str


@dataclass(frozen=True)
class ImportReport:
    rows: int  # data rows read (blank lines not counted)
    inserted: int
    duplicates: tuple[ImportRowError, ...]
    errors: tuple[ImportRowError, ...]


def parse_caller_status(value: str) -> CallerStatus:
    try:
        return CallerStatus(value.strip().lower())
    except ValueError:
        raise InvalidInput(f"invalid caller status {value[:20]!r}: use one of "
                           f"{', '.join(s.value for s in CallerStatus)}") from None


def parse_pool_state(value: str) -> PoolState:
    try:
        return PoolState(value.strip().lower())
    except ValueError:
        raise InvalidInput(f"invalid pool state {value[:20]!r}: use one of "
                           f"{', '.join(s.value for s in PoolState)}") from None
