"""``privnum cdr``: export, verify, purge, reconcile."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from scripts.cdr_export import (
    EXPORT_FORMATS,
    PROGRESS_LINE_EVERY,
    _iso,
    manifest_path,
    write_export,
)
from scripts.cli_output import ExitCode, RateColumn
from scripts.cli_support import (
    container_of,
    fail,
    operator,
    parse_when,
    run,
    settings_of,
    use_cases_of,
    utc_now,
)

if TYPE_CHECKING:
    pass

app = typer.Typer(no_args_is_help=True)


def check_export_args(fmt: str, start: datetime, end: datetime, out: Path, now: datetime,
                      retention_days: int) -> None:
    """Refuse bad input before touching the database, each with one clear line."""
    if fmt not in EXPORT_FORMATS:
        fail(f"--format must be csv or jsonl, not {fmt!r}", ExitCode.USAGE)
    if start >= end:
        fail("--from must be before --to", ExitCode.USAGE)
    oldest = now - timedelta(days=retention_days)
    if start < oldest:
        fail(f"--from {_iso(start)} is outside the retention period ({retention_days} days): "
             f"records before {_iso(oldest)} are purged; use --from {oldest:%Y-%m-%d} or later")
    if out.is_dir():
        fail(f"--out {out} is a directory; give a file name")
    parent = out.parent
    if not parent.is_dir():
        fail(f"--out: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (out.exists()
                                                    and not os.access(out, os.W_OK)):
        fail(f"--out: {out} is not writable")


@app.command("export")
def export_command(
    ctx: typer.Context,
    from_: Annotated[str, typer.Option("--from", help="Start (inclusive), ISO; UTC if no zone.")],
    to: Annotated[str, typer.Option("--to", help="End (exclusive), ISO; UTC if no zone.")],
    out: Annotated[Path, typer.Option("--out", help="Output file.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "csv",
    shop: Annotated[str | None, typer.Option("--shop", help="Only this shop.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress.")] = False,
) -> None:
    """Stream call records to FILE (UTC times, masked numbers) and FILE.manifest.json."""
    start, end = parse_when(from_, "--from"), parse_when(to, "--to")
    settings = settings_of(ctx)
    check_export_args(fmt, start, end, out, utc_now(), settings.call_log.retention_days)
    console = Console(stderr=True, highlight=False)

    async def work() -> dict[str, Any]:
        async with use_cases_of(ctx) as cases:
            rows = cases.call_log.audit_export(operator(), start, end, shop)
            if console.is_terminal:
                with Progress(SpinnerColumn(), TextColumn("exporting {task.completed:,} rows"),
                              RateColumn("rows"), TimeElapsedColumn(), console=console,
                              disable=quiet, transient=True) as bar:
                    task = bar.add_task("export")
                    return await write_export(rows, out, fmt, start, end, shop,
                                              lambda n: bar.update(task, completed=n))
            started = time.monotonic()

            def log_line(rows: int) -> None:  # not a terminal: a plain line now and then
                if rows and rows % PROGRESS_LINE_EVERY == 0:
                    rate = rows / max(time.monotonic() - started, 1e-6)
                    console.print(f"exported {rows} rows, {rate:,.0f} rows/s", soft_wrap=True)

            return await write_export(rows, out, fmt, start, end, shop,
                                      None if quiet else log_line)

    try:
        manifest = run(work)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    console.print(f"{manifest['rows']} rows -> {out} (+ {manifest_path(out).name})",
                  soft_wrap=True)


@app.command("verify")
def verify_command(ctx: typer.Context) -> None:
    """Walk the hash chain; name every altered, deleted or inserted row (exit 1 if any)."""

    async def work() -> Any:
        from binding_store.call_log_audit import verify

        async with container_of(ctx) as container:
            return await verify(container.database)

    report = run(work)
    console = Console()
    for problem in report.problems:
        console.print(f"[red]{problem}[/]", highlight=False)
    if not report.ok:
        fail(f"call log chain broken: {len(report.problems)} problem(s) in "
             f"{report.checked} rows")
    console.print(f"ok: {report.checked} rows, chain {report.anchor_seq + 1}-{report.head_seq} "
                  "intact")


@app.command("purge")
def purge_command(
    ctx: typer.Context,
    older_than_days: Annotated[int | None, typer.Option(
        min=1, help="Default: call_log.retention_days (180).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count.")] = False,
) -> None:
    """Delete call records older than the retention period (oldest part of the chain; on
    PostgreSQL whole partitions are dropped) and routing decisions of the same age."""
    settings = settings_of(ctx)
    days = older_than_days or settings.call_log.retention_days

    async def work() -> Any:
        from binding_store.call_log_audit import purge

        async with container_of(ctx) as container:
            return await purge(container.database, utc_now(), days, dry_run)

    plan = run(work)
    verb = "would delete" if dry_run else "deleted"
    print(f"{verb} {plan.rows} call record(s) older than {days} days "
          f"(before {_iso(plan.cutoff)})")
    if plan.partitions:
        print(f"{'would drop' if dry_run else 'dropped'} partition(s): "
              f"{', '.join(plan.partitions)}")
    if plan.kept_late:
        print(f"kept {plan.kept_late} older record(s) appended after newer ones (the chain "
              "loses only its oldest part); a later purge deletes them")
    if plan.attempts:
        print(f"{verb} {plan.attempts} routing decision(s) of the same age")


@app.command("reconcile")
def reconcile_command(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Option(
        help="cdr_custom CSV (default: call_log.cdr_csv_dir/privnum-cdr.csv, the directory "
             "defaulting to <asterisk.log_dir>/cdr-custom).")] = None,
    system_name: Annotated[str | None, typer.Option(
        help="Asterisk system name for the rows (default: agi.system_name, else the last "
             "one seen over AMI).")] = None,
) -> None:
    """Import what the AMI listener missed from Asterisk's CDR file (idempotent)."""
    from agi.ami_cdr import csv_problem
    from scripts.part_config import default_csv_file

    settings = settings_of(ctx)  # a bad setting is reported before the file is looked at
    if file is not None and not file.is_file():
        fail(f"file not found: {file}")
    path = file or default_csv_file(settings)
    problem = csv_problem(path) or (None if path.is_file() else f"{path} not found")
    if problem is not None:
        # Nothing to read is not "0 imported": say so, and let scripts notice.
        fail(f"nothing to reconcile from: {problem} (Asterisk's safety-net CDR file; set "
             "call_log.cdr_csv_dir or pass --file)")

    async def work() -> Any:
        async with container_of(ctx) as container:
            return await container.reconcile(file=path, system_name=system_name)

    result = run(work)
    for error in result.errors[:20]:
        print(f"skipped {error}")
    if len(result.errors) > 20:
        print(f"... and {len(result.errors) - 20} more line(s) skipped")
    if result.missing_file:  # removed while we ran
        fail(f"nothing to reconcile from: {path} not found")
    print(f"read {result.read} from {path}, imported {result.stored} call record(s), closed "
          f"{result.orphans_closed} attempt(s) without CDR")
    if result.errors:  # the good rows are in; the skipped ones are not
        raise typer.Exit(ExitCode.PARTIAL)
