"""``privnum db``: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from routing.errors import PrivnumError
from scripts.cli_partitions import app as partitions_app
from scripts.cli_support import fail, settings_of

app = typer.Typer(no_args_is_help=True)
app.add_typer(partitions_app, name="partitions")


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Create or upgrade the schema (an empty database becomes a complete one)."""
    from binding_store import migrate
    from scripts.part_config import safe_url

    try:
        settings = settings_of(ctx)
        before = migrate.current(settings.database_url)
        after = migrate.upgrade(settings.database_url, revision)
    except PrivnumError as exc:
        fail(str(exc))
    where = safe_url(settings.database_url)
    if before == after:
        Console().print(f"database {where} already at {after}", highlight=False)
    else:
        Console().print(f"database {where} upgraded {before or 'empty'} -> {after}",
                        highlight=False)


@app.command("check")
def check(ctx: typer.Context) -> None:
    """Exit non-zero unless the schema is at head and matches the models (alembic check)."""
    from binding_store import migrate

    try:
        settings = settings_of(ctx)
        migrate.check(settings.database_url)
    except PrivnumError as exc:
        fail(str(exc))
    Console().print(f"database schema at {migrate.head()}, no drift", highlight=False)


@app.command("current")
def current(ctx: typer.Context) -> None:
    """Print the revision the database is at ('none' if never migrated)."""
    from binding_store import migrate

    try:
        at = migrate.current(settings_of(ctx).database_url)
    except PrivnumError as exc:
        fail(str(exc))
    Console().print(at or "none", highlight=False)
