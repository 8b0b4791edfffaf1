"""What every CLI command shares: settings from the context, one-line errors, async running."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from routing.errors import PrivnumError

if TYPE_CHECKING:
    from scripts.settings import Settings

T = TypeVar("T")


class CliState:
    """Carried in ``ctx.obj``: the config path given with ``--config`` and the built settings."""

    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            # Imported here: pydantic-settings is most of a command's start-up, and
            # ``privnum --help`` never needs it.
            from scripts.settings import load_settings  # noqa: PLC0415

            self._settings = load_settings(self.config_file)
        return self._settings


def settings_of(ctx: typer.Context) -> Settings:
    state = ctx.find_root().obj
    if not isinstance(state, CliState):
        state = CliState(None)
        ctx.find_root().obj = state
    return state.settings


def fail(message: str, code: int = 1) -> NoReturn:
    console = Console(stderr=True)
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; a PrivnumError becomes one clear line and a non-zero exit."""
    try:
        return asyncio.run(make())  # type: ignore[arg-type]
    except PrivnumError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise typer.Exit(130) from None
