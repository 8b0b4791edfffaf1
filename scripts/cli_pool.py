"""``privnum pool``: the virtual-number pool (import from CSV, list with counts, set state)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from binding_store.pool import DEFAULT_BATCH, PoolRepository
from routing.model import PoolState
from routing.shop_views import (
    ImportReport,
    InvalidInput,
    PoolCounts,
    PoolNumberView,
    parse_pool_state,
)
from scripts.cli_support import fail, run, settings_of
from scripts.wiring import open_database, utc_now

app = typer.Typer(help="Virtual-number pool.", no_args_is_help=True)

PARTIAL_EXIT = 3  # some rows had errors (the good rows were imported)
_SHOWN_ERRORS = 20


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with the header 'number,region'.")],
    batch_size: Annotated[int, typer.Option(min=1, max=10_000,
                                            help="Rows per transaction.")] = DEFAULT_BATCH,
    region: Annotated[str, typer.Option(help="Region for rows that give none.")] = "",
    report: Annotated[Path | None, typer.Option(
        help="Write every refused row (line,value,problem) to this CSV file.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Import numbers of the configured number classes (pool.number_classes; default: CN
    mobile, fixed line and the 15-digit 700 segment), stored as +<country code><number>.
    Duplicates are reported, not fatal; rows with errors are listed with their line numbers
    and the reason (exit 3 if any)."""
    if not file.is_file():
        fail(f"file not found: {file}")
    size = file.stat().st_size
    settings = settings_of(ctx)

    async def work() -> ImportReport:
        async with open_database(settings) as db:
            with file.open("rb") as handle, _progress(quiet) as bar:
                task = bar.add_task(f"importing {file.name}", total=size or None)
                return await PoolRepository(db, settings.number_classes).import_csv(
                    _decoded(handle, file), now=utc_now(), batch_size=batch_size,
                    default_region=region,
                    progress=lambda _rows, done: bar.update(task, completed=done))

    try:
        result = run(work)
    except OSError as exc:  # pragma: no cover - races with the is_file check
        fail(f"cannot read {file}: {exc.strerror or exc}")
    _print_report(result)
    if report is not None:
        _write_report(report, result)
    if result.errors:
        raise typer.Exit(PARTIAL_EXIT)


def _decoded(handle: BinaryIO, path: Path) -> Iterator[str]:
    """Lines decoded one by one, so a bad byte is reported with its real line number."""
    for line_no, raw in enumerate(handle, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{path} line {line_no}: not UTF-8 text "
                               "(rows before it were imported)") from None
        yield line.removeprefix("\ufeff") if line_no == 1 else line


def _progress(quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                    DownloadColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                    transient=True, disable=quiet)


def _print_report(result: ImportReport) -> None:
    console = Console()
    console.print(f"{result.rows} row(s) read: {result.inserted} imported, "
                  f"{len(result.duplicates)} duplicate(s), {len(result.errors)} error(s)",
                  highlight=False)
    problems = [("error", e) for e in result.errors] + [("duplicate", d)
                                                       for d in result.duplicates]
    if not problems:
        return
    problems.sort(key=lambda p: p[1].line)
    table = Table("line", "value", "problem")
    for kind, p in problems[:_SHOWN_ERRORS]:
        table.add_row(str(p.line), p.value, f"{kind}: {p.message}")
    console.print(table)
    if len(problems) > _SHOWN_ERRORS:
        console.print(f"... and {len(problems) - _SHOWN_ERRORS} more (use --report FILE)",
                      highlight=False)


def _write_report(path: Path, result: ImportReport) -> None:
    rows = sorted([(e.line, e.value, f"error: {e.message}") for e in result.errors]
                  + [(d.line, d.value, f"duplicate: {d.message}") for d in result.duplicates])
    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["line", "value", "problem"])
            writer.writerows(rows)
    except OSError as exc:
        fail(f"cannot write report {path}: {exc.strerror or exc}")


@app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="available/quarantined/retired")] = None,
    region: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=0, max=100_000,
                                       help="Numbers to list (0: counts only).")] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """Counts by region and state, then the numbers (filtered)."""
    async def work() -> tuple[PoolCounts, list[PoolNumberView]]:
        only = parse_pool_state(state) if state else None
        async with open_database(settings_of(ctx)) as db:
            repo = PoolRepository(db)
            counts = await repo.counts(region=region)
            numbers = (await repo.list_numbers(state=only, region=region, limit=limit,
                                               offset=offset) if limit else [])
            return counts, numbers

    counts, numbers = run(work)
    console = Console()
    summary = Table("region", *(s.value for s in PoolState), "total", title="pool")
    for reg in sorted(counts.by_region):
        cells = [counts.cells.get((reg, s), 0) for s in PoolState]
        summary.add_row(reg or "-", *(str(n) for n in cells), str(sum(cells)))
    by_state = counts.by_state
    summary.add_row("all", *(str(by_state[s]) for s in PoolState), str(counts.total),
                    style="bold")
    console.print(summary)
    if numbers:
        table = Table("number", "region", "state", "last released")
        for n in numbers:
            released = n.last_released_at.strftime("%Y-%m-%d %H:%M:%S") if n.last_released_at \
                else ""
            table.add_row(n.number, n.region, n.state.value, released)
        console.print(table)


@app.command("set-state")
def set_state(
    ctx: typer.Context,
    number: str,
    state: Annotated[str, typer.Argument(help="available/quarantined/retired")],
    actor: Annotated[str, typer.Option("--actor", help="Who (audit log).")] = "cli",
) -> None:
    """Make a number available, quarantine it or retire it (bindings on it run to expiry)."""
    settings = settings_of(ctx)

    async def work() -> PoolNumberView:
        async with open_database(settings) as db:
            return await PoolRepository(db, settings.number_classes).set_state(
                number, parse_pool_state(state), actor=actor, now=utc_now())

    view = run(work)
    Console().print(f"{view.number}: {view.state.value}", highlight=False)
