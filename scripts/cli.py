"""The ``privnum`` command: the single CLI entry point.

Commands load lazily (``scripts.commands``): ``privnum --help`` imports none of them, and a
command imports only its own module (which builds what it needs through ``scripts.container``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from routing.errors import PrivnumError
from scripts import commands
from scripts.cli_output import EXIT_CODES_HELP
from scripts.cli_support import CliState, fail


class _Loaded(Mapping[str, Any]):
    """The group's ``commands``: every registered name, each loaded on first use."""

    def __init__(self) -> None:
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            self._loaded[name] = commands.load(commands.BY_NAME[name])
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(commands.BY_NAME)

    def __len__(self) -> int:
        return len(commands.BY_NAME)


class LazyGroup(TyperGroup):
    """``privnum``'s root group: lists commands from ``scripts.commands`` and imports one only
    to run it (or to show its own help)."""

    def __init__(self, **attrs: Any) -> None:
        attrs.pop("commands", None)
        super().__init__(**attrs)
        self.commands = _Loaded()  # type: ignore[assignment]
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(commands.BY_NAME)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = commands.BY_NAME.get(cmd_name)
        if entry is None:
            return None
        if self._listing:  # the help page needs the name and the line only
            return TyperCommand(name=entry.name, help=entry.help)
        return self.commands[cmd_name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="privnum",
    cls=LazyGroup,
    help="Privacy-number (number-masking) routing engine for Asterisk.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # privnum --install-completion (bash, zsh, fish): commands and options complete on Tab.
    add_completion=True,
)


def package_version() -> str:
    try:
        return version("privnum")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"privnum {package_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML settings file (env PRIVNUM_CONFIG).",
                     envvar="PRIVNUM_CONFIG"),
    ] = None,
    _version: Annotated[
        bool,
        typer.Option("--version", help="Print privnum's version and exit.",
                     callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    ctx.obj = CliState(config)


def main() -> None:
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
