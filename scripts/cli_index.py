"""``privnum index``: the Redis hot index."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from routing.errors import ConfigurationError
from scripts.cli_support import container_of, run, utc_now

app = typer.Typer(no_args_is_help=True)


@app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    force: bool = typer.Option(
        False, "--force",
        help="Also replace states and a watermark newer than SQL's (after restoring SQL "
             "from a backup)."),
) -> None:
    """Restore every Redis key from SQL (the system of record) and drop stale ones.

    A running 'privnum serve' does this by itself when the index is behind SQL or lost."""
    from binding_store.index_rebuild import rebuild_index

    async def work() -> None:
        async with container_of(ctx) as container:
            index, db = container.index, container.database
            if index is None:
                raise ConfigurationError(
                    "no Redis configured (set redis.url or redis.sentinels)")
            await index.ping()
            with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                          disable=quiet, transient=True) as bar:
                tasks: dict[str, TaskID] = {}

                def progress(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        tasks[stage] = bar.add_task(stage, total=total or 1)
                    bar.update(tasks[stage], completed=done if total else 1)

                report = await rebuild_index(index, db, now=utc_now(), progress=progress,
                                             force=force)
        typer.echo(f"index rebuilt: {report.bindings} active bindings, {report.shops} shops, "
                   f"{report.callers} caller numbers; {report.removed} stale keys removed; "
                   f"watermark {report.watermark}")

    run(work)
