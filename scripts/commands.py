"""The list of command groups. One line per group; each group module owns its commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    # Each entry: module under scripts/, attribute holding a typer.Typer, group name.
    # Groups are added by the engineers who write them.
    pass
