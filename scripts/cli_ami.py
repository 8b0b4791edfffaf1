"""``privnum ami listen``: the AMI CDR listener on its own (``privnum serve`` can run it too)."""

from __future__ import annotations

import typer

from scripts.cli_serve import configure_logging
from scripts.cli_support import run, settings_of

app = typer.Typer(no_args_is_help=True)


@app.command("listen")
def listen_command(ctx: typer.Context) -> None:
    """Run the AMI CDR listener until SIGTERM/SIGINT (flushes on the way out)."""
    from scripts.front_doors import run_ami_listener

    settings = settings_of(ctx)
    configure_logging(settings)
    stats = run(lambda: run_ami_listener(settings))
    print(f"stored {stats.stored} call record(s) from {stats.events} events, "
          f"{stats.connects} connect(s)")
