"""The list of command groups. One line per group; each group module owns its commands."""

from __future__ import annotations

from importlib import import_module

import typer


def _group(module: str) -> typer.Typer:
    group = import_module(module).app
    assert isinstance(group, typer.Typer)
    return group


def register(app: typer.Typer) -> None:
    # One line per group: app.add_typer(_group("scripts.<module>"), name="<group>")
    import_module("scripts.cli_serve").register(app)  # top-level: serve, agi
    app.add_typer(_group("scripts.cli_asterisk"), name="asterisk")
    app.add_typer(_group("scripts.cli_db"), name="db")
    app.add_typer(_group("scripts.cli_keys"), name="keys")
    app.add_typer(_group("scripts.cli_shop"), name="shop")
    app.add_typer(_group("scripts.cli_accounts"), name="accounts")
    app.add_typer(_group("scripts.cli_callers"), name="callers")
    app.add_typer(_group("scripts.cli_pool"), name="pool")
    import_module("scripts.cli_api").register(app)  # top-level: api
    app.add_typer(_group("scripts.cli_tokens"), name="tokens")
    import_module("scripts.cli_bindings").register(app)  # top-level: bind, switch-caller, release
    app.add_typer(_group("scripts.cli_index"), name="index")
    app.add_typer(_group("scripts.cli_calls"), name="calls")
    app.add_typer(_group("scripts.cli_cdr"), name="cdr")
    app.add_typer(import_module("scripts.cli_cdr").ami_app, name="ami")
