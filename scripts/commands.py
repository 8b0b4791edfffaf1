"""Every ``privnum`` command, by name, with the line ``privnum --help`` shows for it.

Plain data: importing this module imports no command. ``scripts.cli`` lists commands from here
and imports a command's module only when that command runs (or shows its own help), so
``privnum --help`` and every single command start without loading the others (a command that
serves HTTP would otherwise make ``privnum db current`` import FastAPI and uvicorn).

One line per command: a group (``group=True``: the module's Typer ``attr`` becomes
``privnum <name> ...``; its help is the line here) or a top-level command (the command
``name`` of the module's Typer ``attr``; a test checks the line here against its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class Entry:
    name: str
    module: str
    help: str
    group: bool = True
    attr: str = "app"


COMMANDS: tuple[Entry, ...] = (
    Entry("serve", "scripts.cli_serve", "Run the FastAGI service (and the HTTP API and AMI "
          "listener when enabled) until SIGTERM.", group=False),
    Entry("agi", "scripts.cli_serve", "AGI-script mode: route one call over stdin/stdout "
          "(``AGI(privnum-agi.sh,...)``).", group=False),
    Entry("api", "scripts.cli_api", "Serve the HTTP API until SIGTERM/SIGINT (graceful: "
          "in-flight requests finish).", group=False),
    Entry("bind", "scripts.cli_bindings", "Issue a privacy number X for an order (the same "
          "one again while it is valid), or for every order of a CSV file (--file).",
          group=False),
    Entry("switch-caller", "scripts.cli_bindings", "Move a binding to another approved "
          "caller of the shop (keeps X when it can).", group=False),
    Entry("release", "scripts.cli_bindings", "End a binding before its expiry.", group=False),
    Entry("asterisk", "scripts.cli_asterisk", "Asterisk configuration for privnum: render it, "
          "check an existing one."),
    Entry("config", "scripts.cli_config", "Settings: a commented sample file, the values in "
          "effect."),
    Entry("db", "scripts.cli_db", "Database schema (Alembic migrations) and partitions."),
    Entry("keys", "scripts.cli_keys", "Encryption keys for buyer numbers."),
    Entry("shop", "scripts.cli_shop", "Shops and their privacy-number service."),
    Entry("accounts", "scripts.cli_accounts", "Main account and sub-accounts of a shop."),
    Entry("callers", "scripts.cli_callers",
          "Caller numbers of a shop (only the main account changes them)."),
    Entry("pool", "scripts.cli_pool", "Virtual-number pool."),
    Entry("tokens", "scripts.cli_tokens", "HTTP API bearer tokens."),
    Entry("index", "scripts.cli_index", "Redis hot index."),
    Entry("calls", "scripts.cli_calls", "Shops' privacy-number call records."),
    Entry("cdr", "scripts.cli_cdr",
          "Call detail records: auditor export, tamper check, retention."),
    Entry("recordings", "scripts.cli_recordings",
          "Recorded calls: sweep stale plaintext, purge past retention."),
    Entry("ami", "scripts.cli_ami", "Asterisk manager interface (CDR listener)."),
    Entry("webhooks", "scripts.cli_webhooks",
          "Call and binding events pushed to the platform: subscriptions, deliveries."),
)
BY_NAME = {entry.name: entry for entry in COMMANDS}


def load(entry: Entry) -> TyperCommand | TyperGroup:
    """The click command of ``entry``, importing its module now. Built exactly as an
    ``add_typer`` onto the root would build it (so a one-command group stays a group)."""
    app = getattr(import_module(entry.module), entry.attr)
    assert isinstance(app, typer.Typer)
    root = typer.Typer(add_completion=False)
    if entry.group:
        root.add_typer(app, name=entry.name, help=entry.help)
    else:
        root.add_typer(app)
    built = typer.main.get_command(root)
    assert isinstance(built, TyperGroup)
    command = built.commands[entry.name]
    assert isinstance(command, TyperCommand | TyperGroup)
    return command
