"""``privnum bind --file orders.csv``: issue bindings for many orders, one result per row.

The file is CSV with a header naming its columns: ``order``, ``caller``, ``buyer`` (required),
``shop`` (or ``--shop`` for every row), ``buyer_id``, ``ttl`` (seconds), ``region``.
Rows are issued concurrently (``--concurrency``) so that, on PostgreSQL, the store's
group-commit writer batches them as it batches concurrent API calls; each row still succeeds
or is refused on its own. A refused or malformed row is a result (its error code and one
line), never a traceback and never a stop. Buyer numbers are never printed, only masked.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routing.errors import ErrorCode, InvalidInput, PrivnumError
from routing.extensions import dial_string, display
from routing.numbers import mask, national

if TYPE_CHECKING:
    from routing.usecases import UseCases

MAX_ROWS = 1_000_000
DEFAULT_CONCURRENCY = 64
MIN_TTL = 60
COLUMNS = ("shop", "order", "caller", "buyer", "buyer_id", "ttl", "region")
REQUIRED = ("order", "caller", "buyer")


@dataclass(frozen=True)
class OrderRow:
    """One line of the file; ``problem``: why it cannot be issued as written."""

    line: int
    shop: str
    order: str
    caller: str
    buyer: str
    buyer_id: str
    ttl: timedelta | None
    region: str | None
    problem: str = ""


def read_orders(path: Path, default_shop: str | None) -> list[OrderRow]:
    """The file's rows; a file that cannot be read or has no usable header is an
    ``InvalidInput`` (the command's one error line), a bad row is a row with a problem."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise InvalidInput(f"file not found: {path}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    if "shop" not in header and not default_shop:
        missing.append("shop (or --shop)")
    if unknown or missing:
        parts = ([f"unknown column(s) {', '.join(unknown)}"] if unknown else []) + (
            [f"missing column(s) {', '.join(missing)}"] if missing else [])
        raise InvalidInput(f"{path}: {'; '.join(parts)}; the header names the columns: "
                           f"{','.join(COLUMNS)} (order, caller, buyer required)")
    rows: list[OrderRow] = []
    for line_no, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        rows.append(_row(line_no, dict(zip(header, (c.strip() for c in cells), strict=False)),
                         len(cells) > len(header), default_shop))
        if len(rows) > MAX_ROWS:
            raise InvalidInput(f"{path} has more than {MAX_ROWS:,} rows; split it")
    if not rows:
        raise InvalidInput(f"{path} has no rows")
    return rows


def _row(line: int, cells: Mapping[str, str], extra: bool, default_shop: str | None
         ) -> OrderRow:
    problems = [f"no {c}" for c in REQUIRED if not cells.get(c)]
    shop = cells.get("shop") or default_shop or ""
    if not shop:
        problems.append("no shop")
    if extra:
        problems.append("more cells than the header names")
    ttl: timedelta | None = None
    raw_ttl = cells.get("ttl", "")
    if raw_ttl:
        if not raw_ttl.isdigit():
            problems.append(f"ttl is not a number of seconds: {raw_ttl!r}")
        elif int(raw_ttl) < MIN_TTL:
            problems.append(f"ttl must be at least {MIN_TTL} seconds, got {raw_ttl}")
        else:
            ttl = timedelta(seconds=int(raw_ttl))
    return OrderRow(line=line, shop=shop, order=cells.get("order", ""),
                    caller=cells.get("caller", ""), buyer=cells.get("buyer", ""),
                    buyer_id=cells.get("buyer_id", ""), ttl=ttl,
                    region=cells.get("region") or None, problem="; ".join(problems))


async def issue_all(cases: UseCases, rows: list[OrderRow], *, who: Any,
                    now: Callable[[], Any], concurrency: int,
                    advance: Callable[[int], None]) -> list[dict[str, Any]]:
    """Issue every row, ``concurrency`` at a time; one result per row, in file order."""
    results: list[dict[str, Any]] = [{} for _ in rows]
    queue = iter(enumerate(rows))
    done = 0

    async def worker() -> None:
        nonlocal done
        for i, row in queue:
            results[i] = await _issue_one(cases, row, who, now)
            done += 1
            advance(done)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(rows))))))
    return results


async def _issue_one(cases: UseCases, row: OrderRow, who: Any, now: Callable[[], Any]
                     ) -> dict[str, Any]:
    base: dict[str, Any] = {"line": row.line, "shop": row.shop, "order": row.order,
                            "buyer": mask(row.buyer) if row.buyer else ""}
    if row.problem:
        return {**base, "ok": False, "outcome": ErrorCode.INVALID_INPUT.value,
                "message": row.problem}
    try:
        got = await cases.bindings.issue(
            who, shop_id=row.shop, order_id=row.order, buyer_id=row.buyer_id,
            caller_a=row.caller, buyer_number=row.buyer, now=now(), ttl=row.ttl,
            region=row.region)
    except PrivnumError as exc:
        return {**base, "ok": False, "outcome": exc.code.value, "message": str(exc)}
    return {**base, "buyer": got.buyer_masked, "ok": True,
            "outcome": "issued" if got.created else "existing", "message": "",
            "binding_id": got.binding_id, "caller_a": got.caller_a,
            "virtual_x": got.virtual_x, "expires_at": got.expires_at,
            **_shown(got.virtual_x, got.extension)}


def _shown(virtual_x: str, extension: str) -> dict[str, str]:
    """An extension binding's extension, display form and dial string (AXB: none)."""
    if not extension:
        return {"extension": ""}
    local = national(virtual_x)
    return {"extension": extension, "display": display(local, extension),
            "dial_string": dial_string(local, extension)}
