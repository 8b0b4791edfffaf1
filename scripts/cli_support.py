"""What every CLI command shares: settings from the context, the composition root, the
operator acting, one-line errors, async running."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from routing.errors import PrivnumError

if TYPE_CHECKING:
    from routing.api_ports import Principal
    from routing.usecases import UseCases
    from scripts.container import Container
    from scripts.settings import Settings

T = TypeVar("T")

USAGE_EXIT = 2  # a mistake in the command line (scripts.cli_output.ExitCode.USAGE)


class CliState:
    """Carried in ``ctx.obj``: the config path given with ``--config``, the built settings
    and the warnings found while building them (not yet shown)."""

    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self._settings: Settings | None = None
        self.warnings: list[str] = []

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            # Imported here: pydantic-settings is most of a command's start-up, and
            # ``privnum --help`` never needs it.
            from scripts.settings import env_warnings, load_settings

            self._settings = load_settings(self.config_file)
            self.warnings = env_warnings()
        return self._settings


def state_of(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    if not isinstance(state, CliState):
        state = CliState(None)
        ctx.find_root().obj = state
    return state


def settings_of(ctx: typer.Context) -> Settings:
    """The settings; warnings about them (an unknown ``PRIVNUM_*`` variable) go to stderr
    once. A command that logs takes them with :func:`settings_and_warnings` instead."""
    settings, warnings = settings_and_warnings(ctx)
    for line in warnings:
        warn(line)
    return settings


def settings_and_warnings(ctx: typer.Context, *, allow_test_clock: bool = False
                          ) -> tuple[Settings, list[str]]:
    """The settings and the warnings about them. A ``testing.clock`` refuses every command
    but the one that says it may run on it (``serve --allow-test-clock``): a clock set for a
    test must never move a real service's (or an operator's command's) "now" unnoticed."""
    state = state_of(ctx)
    try:
        settings = state.settings
    except PrivnumError as exc:  # a bad file or value: one line, whichever command asked
        fail(str(exc))
    if settings.testing.clock and not allow_test_clock:
        fail(TEST_CLOCK_REFUSED)
    warnings, state.warnings = state.warnings, []
    return settings, warnings


TEST_CLOCK_REFUSED = (
    "testing.clock (env PRIVNUM_TESTING__CLOCK) is set: it is for end-to-end tests and only "
    "'privnum serve --allow-test-clock' runs with it; unset it to run this command")


def warn(message: str) -> None:
    Console(stderr=True).print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False,
                               soft_wrap=True)


def utc_now() -> datetime:
    return datetime.now(UTC)


def operator(name: str = "cli", acting_as: str | None = None) -> Principal:
    """The person at this shell, as the use cases see them: acts on every shop; ``name`` is
    what the audit log records, ``acting_as`` a shop account named with ``--as``."""
    from routing.api_ports import Principal

    return Principal.operator(name, acting_as=acting_as)


@asynccontextmanager
async def container_of(ctx: typer.Context) -> AsyncIterator[Container]:
    """The composition root for one command (stores built on first use, closed after)."""
    # Imported here: building stores loads SQLAlchemy; --help and usage errors never do.
    from scripts.container import open_container

    async with open_container(settings_of(ctx)) as container:
        yield container


@asynccontextmanager
async def use_cases_of(ctx: typer.Context) -> AsyncIterator[UseCases]:
    async with container_of(ctx) as container:
        yield container.use_cases()


def parse_when(text: str, option: str) -> datetime:
    """ISO date or date-time; without a zone it is UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: not a date or date-time: {text!r} (e.g. 2026-11-28 or "
             f"2026-11-28T12:00:00+08:00)", USAGE_EXIT)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def fail(message: str, code: int = 1) -> NoReturn:
    console = Console(stderr=True)
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; a PrivnumError becomes one clear line and a non-zero exit."""
    import asyncio  # only commands that run need an event loop

    try:
        return asyncio.run(make())  # type: ignore[arg-type]
    except PrivnumError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise typer.Exit(130) from None
