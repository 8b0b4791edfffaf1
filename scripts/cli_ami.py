"""``privnum ami listen``: the AMI CDR listener on its own (``privnum serve`` can run it too)."""

from __future__ import annotations

import logging

import typer

from scripts.ami_service import listen_until_signal
from scripts.cli_support import run, settings_of

app = typer.Typer(no_args_is_help=True)


@app.command("listen")
def listen_command(ctx: typer.Context) -> None:
    """Run the AMI CDR listener until SIGTERM/SIGINT (flushes on the way out)."""
    settings = settings_of(ctx)
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stats = run(lambda: listen_until_signal(settings))
    print(f"stored {stats.stored} call record(s) from {stats.events} events, "
          f"{stats.connects} connect(s)")


