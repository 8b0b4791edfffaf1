"""The ``privnum`` command: the single CLI entry point and composition root."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from routing.errors import PrivnumError
from scripts import commands
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


def main() -> None:
    commands.register(app)
    try:
        app()
    except PrivnumError as exc:  # raised while building settings lazily
        try:
            fail(str(exc))
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None


if __name__ == "__main__":
    main()
