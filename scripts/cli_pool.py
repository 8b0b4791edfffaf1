"""``privnum pool``: the virtual-number pool (import from CSV, list with counts, set state)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console

from routing.errors import InvalidInput
from routing.model import PoolState
from routing.quarantine import QuarantineView
from routing.shop_views import (
    POOL_IMPORT_BATCH,
    ImportReport,
    PoolCounts,
    PoolNumberView,
    parse_pool_state,
)
from scripts.cli_output import (
    Column,
    ExitCode,
    JsonOption,
    print_json,
    print_rows,
    progress,
)
from scripts.cli_support import container_of, fail, operator, run, use_cases_of, utc_now

app = typer.Typer(no_args_is_help=True)

PARTIAL_EXIT = ExitCode.PARTIAL  # some rows had errors (the good rows were imported)
_SHOWN_ERRORS = 20


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with the header 'number,region'.")],
    batch_size: Annotated[int, typer.Option(min=1, max=10_000,
                                            help="Rows per transaction.")] = POOL_IMPORT_BATCH,
    region: Annotated[str, typer.Option(help="Region for rows that give none.")] = "",
    report: Annotated[Path | None, typer.Option(
        help="Write every refused row (line,value,problem) to this CSV file.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Import numbers of the configured number classes (pool.number_classes; default: CN
    mobile, fixed line and the 15-digit 700 segment), stored as +<country code><number>.
    Duplicates are reported, not fatal; rows with errors are listed with their line numbers
    and the reason (exit 3 if any)."""
    if not file.is_file():
        fail(f"file not found: {file}")
    total = _rows_in(file)

    async def work() -> ImportReport:
        async with container_of(ctx) as container:
            with file.open("rb") as handle, progress(f"importing {file.name}", total,
                                                     quiet=quiet) as advance:
                return await container.pool.import_csv(
                    _decoded(handle, file), now=utc_now(), batch_size=batch_size,
                    default_region=region, progress=lambda rows, _bytes: advance(rows))

    try:
        result = run(work)
    except OSError as exc:  # pragma: no cover - races with the is_file check
        fail(f"cannot read {file}: {exc.strerror or exc}")
    _print_report(result, as_json)
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


def _rows_in(path: Path) -> int | None:
    """Data rows (lines but the header): the total the progress line counts towards."""
    try:
        with path.open("rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None
    return max(lines - 1, 0) or None


def _print_report(result: ImportReport, as_json: bool) -> None:
    problems = [("error", e) for e in result.errors] + [("duplicate", d)
                                                       for d in result.duplicates]
    problems.sort(key=lambda p: p[1].line)
    listed = [{"line": p.line, "value": p.value, "kind": kind, "problem": p.message,
               "text": f"{kind}: {p.message}"} for kind, p in problems]
    if as_json:
        print_json({"rows": result.rows, "inserted": result.inserted,
                    "duplicates": len(result.duplicates), "errors": len(result.errors),
                    "problems": listed})
        return
    typer.echo(f"{result.rows} row(s) read: {result.inserted} imported, "
               f"{len(result.duplicates)} duplicate(s), {len(result.errors)} error(s)")
    if not problems:
        return
    print_rows(listed[:_SHOWN_ERRORS], [Column("line", "line"), Column("value", "value"),
                                        Column("text", "problem")], as_json=False)
    if len(problems) > _SHOWN_ERRORS:
        typer.echo(f"... and {len(problems) - _SHOWN_ERRORS} more (use --report FILE)",
                   err=True)


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
    as_json: JsonOption = False,
) -> None:
    """Counts by region and state, then the numbers (filtered)."""
    async def work() -> tuple[PoolCounts, list[PoolNumberView]]:
        only = parse_pool_state(state) if state else None
        async with container_of(ctx) as container:
            repo = container.pool
            counts = await repo.counts(region=region)
            numbers = (await repo.list_numbers(state=only, region=region, limit=limit,
                                               offset=offset) if limit else [])
            return counts, numbers

    counts, numbers = run(work)
    summary = []
    for reg in sorted(counts.by_region):
        cells = {s.value: counts.cells.get((reg, s), 0) for s in PoolState}
        summary.append({"region": reg or "-", **cells, "total": sum(cells.values())})
    summary.append({"region": "all", **{s.value: counts.by_state[s] for s in PoolState},
                    "total": counts.total})
    listed = [{"number": n.number, "region": n.region, "state": n.state.value,
               "last_released": n.last_released_at} for n in numbers]
    if as_json:
        print_json({"counts": summary, "numbers": listed})
        return
    print_rows(summary, [Column("region", "region"), *(Column(s.value, s.value)
                                                       for s in PoolState),
                         Column("total", "total")], as_json=False, title="pool")
    if listed:
        typer.echo()
        print_rows(listed, [Column("number", "number"), Column("region", "region"),
                            Column("state", "state"), Column("last_released", "last released")],
                   as_json=False)


@app.command("mode")
def mode(
    ctx: typer.Context,
    number: str,
    extension_length: Annotated[int | None, typer.Option(
        "--extension", help="Extension mode with extensions of this many digits (1-4).")] = None,
    axb: Annotated[bool, typer.Option("--axb", help="Back to AXB mode.")] = False,
    actor: Annotated[str, typer.Option("--actor", help="Who (audit log).")] = "cli",
) -> None:
    """Put a number into extension mode (one X, many bindings told apart by an extension)
    or back into AXB mode; refused while it has active bindings."""
    from routing.errors import InvalidNumber
    from routing.extensions import NumberMode

    if axb == (extension_length is not None):
        fail("give either --extension N or --axb")

    async def work() -> tuple[str, NumberMode, int | None]:
        async with container_of(ctx) as container:
            e164 = container.settings.number_classes.dialled(number)
            if e164 is None:
                raise InvalidNumber("not a phone number")
            new_mode, length = await container.extension_pool.set_mode(
                e164, NumberMode.AXB if axb else NumberMode.EXTENSION, extension_length,
                actor=actor, now=utc_now())
            return e164, new_mode, length

    e164, new_mode, length = run(work)
    suffix = f", {length}-digit extensions" if length else ""
    Console().print(f"{e164}: {new_mode.value}{suffix}", highlight=False)


@app.command("set-state")
def set_state(
    ctx: typer.Context,
    number: str,
    state: Annotated[str, typer.Argument(help="available/quarantined/retired")],
    actor: Annotated[str, typer.Option("--actor", help="Who (audit log).")] = "cli",
) -> None:
    """Make a number available, quarantine it or retire it (bindings on it run to expiry)."""

    async def work() -> PoolNumberView:
        async with container_of(ctx) as container:
            return await container.pool.set_state(
                number, parse_pool_state(state), actor=actor, now=utc_now())

    view = run(work)
    Console().print(f"{view.number}: {view.state.value}", highlight=False)


@app.command("quarantine")
def quarantine(
    ctx: typer.Context,
    number: str,
    reason: Annotated[str, typer.Option("--reason", help="Why (complaints, a carrier's "
                                        "notice ...); audited and sent with the event.")],
    actor: Annotated[str, typer.Option("--actor", help="Who (audit log).")] = "cli",
    as_json: JsonOption = False,
) -> None:
    """Take X out of allocation at once; its active bindings keep working until they end."""
    async def work() -> QuarantineView:
        async with use_cases_of(ctx) as cases:
            return await cases.quarantine.quarantine(operator(actor), number, reason,
                                                     utc_now())

    _print_quarantine(run(work), as_json)


@app.command("release-quarantine")
def release_quarantine(
    ctx: typer.Context,
    number: str,
    actor: Annotated[str, typer.Option("--actor", help="Who (audit log).")] = "cli",
    as_json: JsonOption = False,
) -> None:
    """Bring a quarantined X back into allocation."""
    async def work() -> QuarantineView:
        async with use_cases_of(ctx) as cases:
            return await cases.quarantine.release(operator(actor), number, utc_now())

    _print_quarantine(run(work), as_json)


def _print_quarantine(view: QuarantineView, as_json: bool) -> None:
    if as_json:
        print_json({"number": view.number, "state": view.state.value, "changed": view.changed,
                    "reason": view.reason or None, "active_bindings": view.active_bindings})
        return
    note = "" if view.changed else " (unchanged)"
    typer.echo(f"{view.number}: {view.state.value}{note}; {view.active_bindings} active "
               "binding(s) keep working until they end")
