"""``privnum serve`` (FastAGI + HTTP API + AMI listener) and ``privnum agi`` (AGI-script mode)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys

import typer

from agi.script_mode import run_script_async
from scripts.agi_service import route_stack
from scripts.cli_support import run, settings_of
from scripts.serve_all import serve_everything
from scripts.settings import Settings


def configure_logging(settings: Settings, stream: object = None) -> None:
    logging.basicConfig(
        level=settings.log_level,
        stream=stream or sys.stderr,  # type: ignore[arg-type]
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


app = typer.Typer()


@app.command("serve")
def serve_command(ctx: typer.Context) -> None:
    """Run the FastAGI service (and the HTTP API and AMI listener when enabled) until SIGTERM."""
    settings = settings_of(ctx)
    configure_logging(settings)
    run(lambda: serve_everything(settings))


@app.command("agi")
def agi_command(ctx: typer.Context) -> None:
    """AGI-script mode: route one call over stdin/stdout (``AGI(privnum-agi.sh,...)``)."""
    settings = settings_of(ctx)
    # stdout is the AGI channel: logs must go to stderr only.
    configure_logging(settings, sys.stderr)

    # Asterisk sends SIGHUP when the channel hangs up; until the session takes over that
    # signal, it must not kill us half-way through opening the store.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    async def one_call() -> int:
        async with route_stack(settings) as stack:
            code = await run_script_async(
                stack.handler, sys.stdin, sys.stdout,
                env_timeout=settings.agi.env_timeout_seconds,
                env_max_bytes=settings.agi.env_max_bytes,
                command_timeout=settings.agi.command_timeout_seconds,
                call_timeout=settings.agi.call_timeout_seconds,
            )
            # Let Asterisk go on with the dialplan now, not after the store has shut down.
            with contextlib.suppress(OSError):
                sys.stdout.flush()
                os.close(sys.stdout.fileno())
            return code

    raise typer.Exit(run(one_call))

