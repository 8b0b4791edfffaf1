"""``privnum cdr`` (export, verify, purge, reconcile) and ``privnum ami listen``."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from binding_store.call_log_audit import purge, verify
from binding_store.call_log_query import ExportRow, export_rows
from scripts.ami_service import listen_until_signal, reconcile
from scripts.cli_support import fail, run, settings_of
from scripts.wiring import open_database, utc_now

app = typer.Typer(help="Call detail records: auditor export, tamper check, retention.",
                  no_args_is_help=True)
ami_app = typer.Typer(help="Asterisk manager interface (CDR listener).", no_args_is_help=True)

EXPORT_COLUMNS = (
    "chain_seq", "system_name", "uniqueid", "linkedid", "shop_id", "order_id", "binding_id",
    "buyer_id", "direction", "caller_a", "caller_masked", "virtual_x", "buyer_masked",
    "start_utc", "answer_utc", "end_utc", "duration", "billsec", "disposition",
    "hangup_cause", "outcome", "reason", "reason_text", "source", "row_hash")


def parse_when(text: str, option: str) -> datetime:
    """ISO date or date-time; without a zone it is UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: not a date or date-time: {text!r} (e.g. 2026-11-28 or "
             f"2026-11-28T12:00:00+08:00)")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def export_dict(row: ExportRow) -> dict[str, Any]:
    r = row.record
    return {
        "chain_seq": row.chain_seq, "system_name": r.system_name, "uniqueid": r.uniqueid,
        "linkedid": r.linkedid, "shop_id": r.shop_id, "order_id": r.order_id,
        "binding_id": r.binding_id, "buyer_id": r.buyer_id, "direction": r.direction or "",
        "caller_a": r.caller_a, "caller_masked": r.caller_masked, "virtual_x": r.virtual_x,
        "buyer_masked": r.buyer_masked, "start_utc": _iso(r.start_utc),
        "answer_utc": _iso(r.answer_utc), "end_utc": _iso(r.end_utc), "duration": r.duration,
        "billsec": r.billsec, "disposition": r.disposition,
        "hangup_cause": "" if r.hangup_cause is None else r.hangup_cause,
        "outcome": r.outcome, "reason": r.reason, "reason_text": r.reason_text,
        "source": r.source, "row_hash": row.row_hash}


class ExportWriter:
    """Encodes rows as CSV or JSON lines into a binary file, hashing as it goes."""

    def __init__(self, handle: Any, fmt: str) -> None:
        self.handle = handle
        self.fmt = fmt
        self.sha = hashlib.sha256()
        self.rows = 0
        self._buf = io.StringIO()
        self._csv = csv.writer(self._buf, lineterminator="\n")
        if fmt == "csv":
            self._csv.writerow(EXPORT_COLUMNS)
            self._flush()

    def _flush(self) -> None:
        data = self._buf.getvalue().encode()
        self._buf.seek(0)
        self._buf.truncate()
        self.sha.update(data)
        self.handle.write(data)

    def write(self, values: dict[str, Any]) -> None:
        if self.fmt == "csv":
            self._csv.writerow([values[c] for c in EXPORT_COLUMNS])
        else:
            self._buf.write(json.dumps(values, ensure_ascii=False, separators=(",", ":")))
            self._buf.write("\n")
        self.rows += 1
        if self._buf.tell() > 65_536:
            self._flush()

    def close(self) -> None:
        self._flush()


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
    if fmt not in ("csv", "jsonl"):
        fail(f"--format must be csv or jsonl, not {fmt!r}")
    start, end = parse_when(from_, "--from"), parse_when(to, "--to")
    if start >= end:
        fail("--from must be before --to")
    settings = settings_of(ctx)
    tmp = out.with_name(out.name + ".part")

    async def work() -> int:
        async with open_database(settings) as db:
            with tmp.open("wb") as handle, Progress(
                    SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=Console(stderr=True), disable=quiet) as bar:
                task = bar.add_task("exporting 0 rows")
                writer = ExportWriter(handle, fmt)
                async for row in export_rows(db, start, end, shop):
                    writer.write(export_dict(row))
                    if writer.rows % 5000 == 0:
                        bar.update(task, description=f"exporting {writer.rows} rows")
                writer.close()
        tmp.replace(out)
        manifest = {
            "file": out.name, "format": fmt, "rows": writer.rows,
            "sha256": writer.sha.hexdigest(), "from_utc": _iso(start), "to_utc": _iso(end),
            "shop_id": shop, "time_zone": "UTC", "numbers": "buyer numbers masked",
            "columns": list(EXPORT_COLUMNS), "generated_at_utc": _iso(utc_now())}
        out.with_name(out.name + ".manifest.json").write_text(
            json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return writer.rows

    try:
        rows = run(work)
    finally:
        tmp.unlink(missing_ok=True)
    Console(stderr=True).print(f"{rows} rows -> {out} (+ {out.name}.manifest.json)")


@app.command("verify")
def verify_command(ctx: typer.Context) -> None:
    """Walk the hash chain; name every altered, deleted or inserted row (exit 1 if any)."""

    async def work() -> Any:
        async with open_database(settings_of(ctx)) as db:
            return await verify(db)

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
    """Delete call records older than the retention period (oldest part of the chain)."""
    settings = settings_of(ctx)
    days = older_than_days or settings.call_log.retention_days

    async def work() -> Any:
        async with open_database(settings) as db:
            return await purge(db, utc_now(), days, dry_run)

    plan = run(work)
    verb = "would delete" if dry_run else "deleted"
    print(f"{verb} {plan.rows} call record(s) older than {days} days "
          f"(before {_iso(plan.cutoff)})")


@app.command("reconcile")
def reconcile_command(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Option(
        help="cdr_custom CSV (default: call_log.cdr_csv_dir/privnum-cdr.csv).")] = None,
    system_name: Annotated[str | None, typer.Option(
        help="Asterisk system name for the rows (default: agi.system_name, else the last "
             "one seen over AMI).")] = None,
) -> None:
    """Import what the AMI listener missed from Asterisk's CDR file (idempotent)."""
    settings = settings_of(ctx)
    if file is not None and not file.is_file():
        fail(f"file not found: {file}")

    async def work() -> Any:
        async with open_database(settings) as db:
            return await reconcile(settings, db, file=file, system_name=system_name)

    result = run(work)
    for error in result.errors[:20]:
        print(f"skipped {error}")
    source = "no CDR file configured/found; " if result.missing_file else ""
    print(f"{source}read {result.read}, imported {result.stored} call record(s), closed "
          f"{result.orphans_closed} attempt(s) without CDR")


@ami_app.command("listen")
def listen_command(ctx: typer.Context) -> None:
    """Run the AMI CDR listener until SIGTERM/SIGINT (flushes on the way out)."""
    settings = settings_of(ctx)
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stats = run(lambda: listen_until_signal(settings))
    print(f"stored {stats.stored} call record(s) from {stats.events} events, "
          f"{stats.connects} connect(s)")


