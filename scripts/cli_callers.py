"""``privnum callers``: a shop's caller numbers (主叫号码). Changes act as the shop's main account
unless ``--as`` names another account (which is then refused: only the admin may)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from routing.errors import InvalidInput
from scripts.cli_accounts import AsOpt
from scripts.cli_output import Column, ExitCode, JsonOption, print_json, print_rows
from scripts.cli_support import USAGE_EXIT, fail, operator, run, use_cases_of, utc_now

if TYPE_CHECKING:
    from routing.model import CallerStatus
    from routing.shop_views import BatchReport, BatchRow, CallerView

app = typer.Typer(no_args_is_help=True)

PARTIAL_EXIT = ExitCode.PARTIAL  # some rows were refused (the good rows landed)


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
        async with use_cases_of(ctx) as cases:
            return await cases.callers.add(operator(acting_as=actor), shop_id, number,
                                           now=utc_now(), account_id=account)

    caller = run(work)
    Console().print(f"caller {caller.number} added to shop {shop_id} ({caller.status.value}, "
                    f"account {caller.account_id})", highlight=False)


@app.command("remove")
def remove(ctx: typer.Context, shop_id: str, number: str, actor: AsOpt = None) -> None:
    """Remove a caller number (the main account's number cannot be removed)."""
    async def work() -> CallerView:
        async with use_cases_of(ctx) as cases:
            return await cases.callers.remove(operator(acting_as=actor), shop_id, number,
                                              utc_now())

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
    new = _status(status)

    async def work() -> CallerView:
        async with use_cases_of(ctx) as cases:
            return await cases.callers.set_status(operator(acting_as=actor), shop_id, number,
                                                  new, utc_now())

    caller = run(work)
    Console().print(f"caller {caller.number}: {caller.status.value}", highlight=False)


@app.command("list")
def list_(
    ctx: typer.Context,
    shop_id: str,
    status: Annotated[str | None, typer.Option(
        help="Only this status: pending, approved, rejected or disabled.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List a shop's caller numbers, the main number first."""
    only = _status(status) if status is not None else None

    async def work() -> list[CallerView]:
        async with use_cases_of(ctx) as cases:
            return await cases.callers.list(operator(), shop_id, only)

    print_rows([{"number": c.number, "status": c.status.value, "account": c.account_id,
                 "is_main": c.is_main, "main": "yes" if c.is_main else ""} for c in run(work)],
               [Column("number", "number"), Column("status", "status"),
                Column("account", "account"), Column("main", "main")], as_json=as_json)


@app.command("batch")
def batch(
    ctx: typer.Context,
    shop_id: str,
    file: Annotated[Path, typer.Argument(help="CSV: number[,account] per line; header optional.")],
    actor: AsOpt = None,
    as_json: JsonOption = False,
) -> None:
    """Batch-enable sub-account numbers: only reviewed mobile numbers of this shop's
    sub-accounts are accepted. One result per row; good rows land even if others are refused
    (exit 3 when any row was refused)."""
    try:
        rows = read_batch_file(file)
    except InvalidInput as exc:
        fail(str(exc))

    async def work() -> BatchReport:
        async with use_cases_of(ctx) as cases:
            return await cases.callers.batch_add(operator(acting_as=actor), shop_id, rows,
                                                 utc_now())

    report = run(work)
    results = [{"line": r.line, "input": r.raw, "number": r.number, "ok": r.ok,
                "outcome": r.outcome.value, "result": f"{r.outcome.value}: {r.outcome.text}"}
               for r in report.rows]
    if as_json:
        print_json({"added": report.added, "refused": report.refused, "rows": results})
    else:
        print_rows(results, [Column("line", "line"), Column("input", "input"),
                          Column("number", "number"), Column("result", "result")],
                   as_json=False)
        typer.echo(f"{report.added} added, {report.refused} refused", err=True)
    if report.refused:
        raise typer.Exit(PARTIAL_EXIT)


def _status(text: str) -> CallerStatus:
    """A caller status named on the command line; a wrong name is a usage mistake."""
    from routing.shop_views import parse_caller_status

    try:
        return parse_caller_status(text)
    except InvalidInput as exc:
        fail(str(exc), USAGE_EXIT)


def read_batch_file(path: Path) -> list[BatchRow]:
    """Rows of ``number[,account]``; blank lines and a ``number`` header are skipped. A line
    that is not CSV becomes a row with the raw text (reported as an invalid number)."""
    from routing.shop_views import MAX_BATCH_ROWS, BatchRow

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

