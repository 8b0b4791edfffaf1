"""``privnum callers``: a shop's caller numbers (主叫号码). Changes act as the shop's main account
unless ``--as`` names another account (which is then refused: only the admin may)."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from binding_store.callers import MAX_BATCH_ROWS, CallerRepository
from binding_store.shops import ShopRepository
from routing.shop_views import (
    BatchReport,
    BatchRow,
    CallerView,
    InvalidInput,
    parse_caller_status,
)
from scripts.cli_accounts import AsOpt, acting_account
from scripts.cli_support import fail, run, settings_of
from scripts.wiring import open_database, utc_now
from scripts.wiring_index import open_index

app = typer.Typer(help="Caller numbers of a shop (only the main account changes them).",
                  no_args_is_help=True)

PARTIAL_EXIT = 3  # a batch in which some rows were refused (the good rows landed)


@asynccontextmanager
async def acting_on_callers(ctx: typer.Context, shop_id: str, actor: str | None
                            ) -> AsyncIterator[tuple[CallerRepository, str]]:
    """The shop's callers (changes reach the Redis index when one is configured) and the
    account acting on them."""
    settings = settings_of(ctx)
    async with open_database(settings) as db, open_index(settings) as index:
        yield CallerRepository(db, index), await acting_account(db, shop_id, actor)


@app.command("add")
def add(
    ctx: typer.Context,
    shop_id: str,
    number: str,
    account: Annotated[str | None, typer.Option(
        help="Sub-account the number belongs to (default: found by phone).")] = None,
    actor: AsOpt = None,
) -> None:
    """Add a sub-account's phone: approved if it passed review, otherwise pending."""
    async def work() -> CallerView:
        async with acting_on_callers(ctx, shop_id, actor) as (callers, who):
            return await callers.add(shop_id, number, actor=who, now=utc_now(),
                                     account_id=account)

    caller = run(work)
    Console().print(f"caller {caller.number} added to shop {shop_id} ({caller.status.value}, "
                    f"account {caller.account_id})", highlight=False)


@app.command("remove")
def remove(ctx: typer.Context, shop_id: str, number: str, actor: AsOpt = None) -> None:
    """Remove a caller number (the main account's number cannot be removed)."""
    async def work() -> CallerView:
        async with acting_on_callers(ctx, shop_id, actor) as (callers, who):
            return await callers.remove(shop_id, number, actor=who, now=utc_now())

    caller = run(work)
    Console().print(f"caller {caller.number} removed from shop {shop_id}", highlight=False)


@app.command("set-status")
def set_status(
    ctx: typer.Context,
    shop_id: str,
    number: str,
    status: Annotated[str, typer.Argument(help="pending/approved/rejected/disabled")],
    actor: AsOpt = None,
) -> None:
    """Set a caller number's status (approved needs a reviewed phone)."""
    async def work() -> CallerView:
        new = parse_caller_status(status)
        async with acting_on_callers(ctx, shop_id, actor) as (callers, who):
            return await callers.set_status(shop_id, number, new, actor=who, now=utc_now())

    caller = run(work)
    Console().print(f"caller {caller.number}: {caller.status.value}", highlight=False)


@app.command("list")
def list_(
    ctx: typer.Context,
    shop_id: str,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
) -> None:
    """List a shop's caller numbers, the main number first."""
    async def work() -> list[CallerView]:
        only = parse_caller_status(status) if status else None
        async with open_database(settings_of(ctx)) as db:
            await ShopRepository(db).get(shop_id)  # NotFound for an unknown shop
            return await CallerRepository(db).list_callers(shop_id, status=only)

    table = Table("number", "status", "account", "main")
    for c in run(work):
        table.add_row(c.number, c.status.value, c.account_id, "yes" if c.is_main else "")
    Console().print(table)


@app.command("batch")
def batch(
    ctx: typer.Context,
    shop_id: str,
    file: Annotated[Path, typer.Argument(help="CSV: number[,account] per line; header optional.")],
    actor: AsOpt = None,
) -> None:
    """Batch-enable sub-account numbers: only reviewed mobile numbers of this shop's
    sub-accounts are accepted. One result per row; good rows land even if others are refused
    (exit 3 when any row was refused)."""
    try:
        rows = read_batch_file(file)
    except InvalidInput as exc:
        fail(str(exc))

    async def work() -> BatchReport:
        async with acting_on_callers(ctx, shop_id, actor) as (callers, who):
            return await callers.batch_add(shop_id, rows, actor=who, now=utc_now())

    report = run(work)
    table = Table("line", "input", "number", "result")
    for r in report.rows:
        style = "green" if r.ok else "red"
        table.add_row(str(r.line), r.raw, r.number or "",
                      f"[{style}]{r.outcome.value}[/]: {r.outcome.text}")
    console = Console()
    console.print(table)
    console.print(f"{report.added} added, {report.refused} refused", highlight=False)
    if report.refused:
        raise typer.Exit(PARTIAL_EXIT)


def read_batch_file(path: Path) -> list[BatchRow]:
    """Rows of ``number[,account]``; blank lines and a ``number`` header are skipped. A line
    that is not CSV becomes a row with the raw text (reported as an invalid number)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise InvalidInput(f"file not found: {path}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    rows: list[BatchRow] = []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            cells = [c.strip() for c in next(csv.reader([line], strict=True), [])]
        except csv.Error:
            # A stray quote (an export cut short): read the line plainly, quotes dropped; the
            # number itself must still be digits only.
            cells = [c.strip().strip('"').strip() for c in line.split(",")]
        if not rows and cells and cells[0].lower() == "number":
            continue
        account = cells[1] if len(cells) > 1 and cells[1] else None
        rows.append(BatchRow(line=line_no, number=cells[0] if cells else "", account_id=account))
    if not rows:
        raise InvalidInput(f"{path} has no rows")
    if len(rows) > MAX_BATCH_ROWS:
        raise InvalidInput(f"{path} has {len(rows)} rows; a batch holds at most {MAX_BATCH_ROWS}")
    return rows

