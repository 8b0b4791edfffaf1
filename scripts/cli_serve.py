"""``privnum serve`` (FastAGI + HTTP API + AMI listener) and ``privnum agi`` (AGI-script mode)."""

from __future__ import annotations

import gc
import logging
import sys
from typing import TYPE_CHECKING, TextIO

import typer

from scripts.cli_support import run, settings_and_warnings, settings_of

if TYPE_CHECKING:
    from scripts.clock import Clock
    from scripts.settings import Settings

app = typer.Typer()


def configure_logging(settings: Settings, stream: TextIO | None = None, *,
                      batched: bool = True) -> None:
    """``log.format`` (text or json) on stderr, uvicorn's loggers included; every line of an
    HTTP request carries its request id. ``batched``: a service's, lines below WARNING
    written every ``log.flush_seconds``; else every line at once (a process that routes one
    call and exits)."""
    from api.request_id import current_request_id
    from scripts import logs

    logs.configure_logging(settings.log_level, settings.log.format, stream or sys.stderr,
                           context=(current_request_id,),
                           flush_seconds=settings.log.flush_seconds if batched else 0.0)


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Call-path processes on the FastAGI port (default: "
        "agi.workers, else one per core on PostgreSQL, one on SQLite)."),
    allow_test_clock: bool = typer.Option(
        False, "--allow-test-clock", help="For end-to-end tests: run on testing.clock (env "
        "PRIVNUM_TESTING__CLOCK) instead of the real clock. Without it, a set testing.clock "
        "refuses to start."),
) -> None:
    """Run the FastAGI service (and the HTTP API and AMI listener when enabled) until SIGTERM."""
    from scripts.clock import service_clock, utc_now
    from scripts.front_doors import serve

    settings, warnings = settings_and_warnings(ctx, allow_test_clock=allow_test_clock)
    if workers is not None:
        settings.agi.workers = workers
    configure_logging(settings)
    for line in warnings:  # through the log, in its format
        logging.getLogger("privnum.settings").warning("%s", line)
    clock: Clock = utc_now
    if settings.testing.clock:  # built once here, passed down through the container
        shifted = service_clock(settings.testing.clock, utc_now())
        settings.testing.clock = shifted.spec  # worker processes get this very clock
        logging.getLogger("privnum.serve").warning(
            "running on a TEST CLOCK (testing.clock): now is %s, not the real time",
            shifted().isoformat(timespec="seconds"))
        clock = shifted
    run(lambda: serve(settings, clock=clock))


@app.command("agi")
def agi_command(ctx: typer.Context) -> None:
    """AGI-script mode: route one call over stdin/stdout (``AGI(privnum-agi.sh,...)``)."""
    # One call, then the process exits: the cyclic collector would only walk the growing
    # start-up heap again and again while the call path is imported (about a sixth of the
    # call's post-dial delay); what the one call leaves is freed at exit.
    gc.disable()
    from scripts.call_path import run_agi

    settings = settings_of(ctx)
    # stdout is the AGI channel: logs to stderr only, each line at once (one call, then exit)
    configure_logging(settings, sys.stderr, batched=False)
    raise typer.Exit(run(lambda: run_agi(settings)))
