"""``privnum recordings``: operator maintenance of recorded calls (what ``privnum serve`` also
does on its own, for a host where it is stopped or a cron job): encrypt or delete stale
plaintext left by a crash, delete recordings past their shop's retention."""

from __future__ import annotations

import typer

from scripts.cli_output import JsonOption, print_json
from scripts.cli_support import container_of, run, utc_now

app = typer.Typer(help="Recorded calls: sweep stale plaintext, purge past retention.",
                  no_args_is_help=True)


@app.command("sweep")
def sweep_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Encrypt (or delete) the plaintext recordings no call is writing any more."""
    async def work() -> int:
        async with container_of(ctx) as container:
            return await container.recordings.sweep(utc_now())

    handled = run(work)
    if as_json:
        print_json({"swept": handled})
    else:
        print(f"{handled} plaintext recording(s) encrypted or deleted")


@app.command("purge")
def purge_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Delete the encrypted recordings past their shop's retention (recording.purged)."""
    async def work() -> int:
        async with container_of(ctx) as container:
            total = 0
            while (purged := await container.recordings.purge(utc_now())) > 0:
                total += purged
            return total

    purged = run(work)
    if as_json:
        print_json({"purged": purged})
    else:
        print(f"{purged} recording(s) purged")
