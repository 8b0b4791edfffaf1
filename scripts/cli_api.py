"""``privnum api``: the HTTP API alone (``privnum serve`` runs it beside FastAGI)."""

from __future__ import annotations

from typing import Annotated

import typer

from scripts.cli_serve import configure_logging
from scripts.cli_support import run, settings_of

app = typer.Typer()


@app.command("api")
def api_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (api.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (api.port).")] = None,
) -> None:
    """Serve the HTTP API until SIGTERM/SIGINT (graceful: in-flight requests finish)."""
    from scripts.front_doors import run_api

    settings = settings_of(ctx)
    if host is not None:
        settings.api.host = host
    if port is not None:
        settings.api.port = port
    configure_logging(settings)
    run(lambda: run_api(settings))
