"""``privnum db partitions``: the call log's time partitions on PostgreSQL (list, create ahead).
Dropping them for retention is ``privnum cdr purge``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from routing.errors import PrivnumError
from scripts.cli_output import Column, JsonOption, print_json, print_rows
from scripts.cli_support import container_of, fail, run, settings_of, utc_now

if TYPE_CHECKING:
    from binding_store.partitions import EnsureReport, Partition, Period
    from scripts.settings import Settings

app = typer.Typer(help="The call log's time partitions (PostgreSQL).", no_args_is_help=True)
SQLITE_NOTE = "SQLite keeps one table per log: no partitions to manage"


def _settings(ctx: typer.Context) -> Settings:
    try:
        return settings_of(ctx)
    except PrivnumError as exc:
        fail(str(exc))


@app.command("list")
def list_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Each partitioned table's partitions, oldest first, with estimated rows."""
    from binding_store.partitions import partitions_of

    _settings(ctx)

    async def work() -> tuple[str, dict[str, list[Partition]]]:
        async with container_of(ctx) as container:
            db = container.database
            return db.dialect, await partitions_of(db)

    dialect, found = run(work)
    if dialect != "postgresql":
        if as_json:
            print_json([])
        else:
            print(SQLITE_NOTE)
        return
    if not found:
        fail("no partitioned tables: run 'privnum db upgrade'")
    rows = [{"table": part.table, "partition": part.name, "from": part.lower,
             "to": part.upper, "rows": None if part.rows < 0 else part.rows,
             "from_text": f"{part.lower:%Y-%m-%d %H:%M}" if part.lower else "(default)",
             "to_text": f"{part.upper:%Y-%m-%d %H:%M}" if part.upper else "",
             "rows_text": "?" if part.rows < 0 else str(part.rows)}
            for parts in found.values() for part in parts]
    if as_json:
        print_json([{k: r[k] for k in ("table", "partition", "from", "to", "rows")}
                    for r in rows])
        return
    print_rows(rows, [Column("table", "table"), Column("partition", "partition"),
                      Column("from_text", "from"), Column("to_text", "to"),
                      Column("rows_text", "rows (estimate)")], as_json=False,
               title="call log partitions (UTC)")


@app.command("create")
def create_command(
    ctx: typer.Context,
    ahead: Annotated[int | None, typer.Option(
        min=1, max=366, help="Periods after the current one (default: database.partitions_ahead)."
    )] = None,
    period: Annotated[str | None, typer.Option(
        help="day, week or month (default: database.partition_period).")] = None,
) -> None:
    """Create the partitions of the current period and the next ones (idempotent)."""
    from binding_store.partitions import PERIODS, ensure_partitions

    settings = _settings(ctx)
    chosen: Period = settings.database.partition_period
    if period is not None:
        if period not in PERIODS:
            fail(f"--period must be one of {', '.join(PERIODS)}, not {period!r}")
        chosen = period
    count = ahead or settings.database.partitions_ahead

    async def work() -> tuple[str, EnsureReport]:
        async with container_of(ctx) as container:
            db = container.database
            return db.dialect, await ensure_partitions(db, utc_now(), chosen, count)

    dialect, report = run(work)
    if dialect != "postgresql":
        print(SQLITE_NOTE)
        return
    for name in report.created:
        moved = report.moved.get(name)
        print(f"created {name}" + (f" (moved {moved} row(s) in from the DEFAULT partition)"
                                   if moved else ""))
    for name in report.waiting:
        print(f"not created now (tables busy, retry): {name}")
    for table_name, rows in report.in_default.items():
        print(f"warning: {rows} row(s) of {table_name} outside every time partition")
    print(f"{len(report.created)} partition(s) created; the current {chosen} and the next "
          f"{count} are covered")
