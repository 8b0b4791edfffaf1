"""``privnum api``: the HTTP API alone (``privnum serve`` runs it beside FastAGI)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer

from scripts.cli_support import run, settings_of

app = typer.Typer()


@app.command("api")
def api_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (api.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (api.port).")] = None,
) -> None:
    """Serve the HTTP API until SIGTERM/SIGINT (graceful: in-flight requests finish)."""
    from scripts.api_service import run_api  # noqa: PLC0415 - heavy import, only when used
    from scripts.cli_serve import configure_logging  # noqa: PLC0415

    settings = settings_of(ctx)
    if host is not None:
        settings.api.host = host
    if port is not None:
        settings.api.port = port
    configure_logging(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await run_api(settings, stop)

    run(main)

