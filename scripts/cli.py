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
        code = app(standalone_mode=False, prog_name="privnum")
    except typer.Exit as done:
        code = done.exit_code
    except typer.Abort:
        code = _fail_code("aborted", 130)
    except typer.TyperException as exc:
        # Usage errors: one line and a pointer to --help, instead of a framed box.
        code = _usage_error(exc)
    except PrivnumError as exc:  # raised while building settings lazily
        code = _fail_code(str(exc), 1)
    raise SystemExit(code if isinstance(code, int) else 0)


def _usage_error(exc: typer.TyperException) -> int:
    code = int(getattr(exc, "exit_code", 2))
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    if not message.strip() or "\n" in message.strip():
        return code  # a bare group: its help text was shown already
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return _fail_code(f"{message}{hint}", code)


def _fail_code(message: str, code: int) -> int:
    try:
        fail(message, code)
    except typer.Exit as done:
        return int(done.exit_code)


if __name__ == "__main__":
    main()
