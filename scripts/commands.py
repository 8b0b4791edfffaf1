"""The list of command groups. One import and one line per group; each module owns its commands."""

from __future__ import annotations

import typer

from scripts import cli_asterisk


def register(app: typer.Typer) -> None:
    app.add_typer(cli_asterisk.app, name="asterisk")
