"""The ``privnum`` command: the single CLI entry point and composition root."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from routing.errors import PrivnumError
from scripts.cli_support import CliState, fail

app = typer.Typer(
    name="privnum",
    help="Privacy-number (number-masking) routing engine for Asterisk.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML settings file (env PRIVNUM_CONFIG).",
                     envvar="PRIVNUM_CONFIG"),
    ] = None,
) -> None:
    ctx.obj = CliState(config)


def _register() -> None:
    """Attach the command groups; each lives in its own module under scripts/."""
    # Sub-command modules are imported here, not at module level, so that `privnum --help`
    # stays fast and a broken optional group cannot stop the others.
    from scripts import commands

    commands.register(app)


def main() -> None:
    _register()
    try:
        app()
    except PrivnumError as exc:  # raised while building settings lazily
        try:
            fail(str(exc))
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None
