"""``privnum config sample|show``: the settings file to start from, and what is in effect."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from scripts.cli_support import settings_of, state_of
from scripts.config_sample import effective, sample
from scripts.settings import Settings, config_path, read_config_file

app = typer.Typer(no_args_is_help=True)


@app.command("sample")
def sample_command() -> None:
    """Print a commented TOML settings file with every key and its default (generated from
    the settings privnum reads): privnum config sample > /etc/privnum/privnum.toml"""
    sys.stdout.write(sample(Settings))


@app.command("show")
def show_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per setting.")] = False,
) -> None:
    """Print every setting in effect and where it came from (default, file or env);
    secrets are masked."""
    settings = settings_of(ctx)
    path = config_path(state_of(ctx).config_file)
    file_values = read_config_file(path) if path is not None else {}
    rows = list(effective(settings, file_values, os.environ))
    if as_json:
        typer.echo(json.dumps({"config_file": str(path) if path else None,
                               "settings": [r.__dict__ for r in rows]}, indent=2))
        return
    typer.echo(f"# config file: {path if path else 'none (defaults and environment only)'}")
    sources = [f"env {r.variable}" if r.variable else r.source for r in rows]
    key_width = max(len(r.key) for r in rows)
    source_width = max(len(s) for s in sources)
    for row, source in zip(rows, sources, strict=True):
        typer.echo(f"{row.key:<{key_width}}  {source:<{source_width}}  {_text(row.value)}")


def _text(value: object) -> str:
    if value is None:
        return "(unset)"
    if value == "":
        return '""'
    return value if isinstance(value, str) else json.dumps(value)
