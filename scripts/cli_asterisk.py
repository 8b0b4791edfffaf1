"""``privnum asterisk render``: the Asterisk configuration filled from the settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scripts.cli_support import fail, settings_of

if TYPE_CHECKING:
    from scripts.asterisk_render import RenderOptions
    from scripts.settings import Settings

app = typer.Typer(no_args_is_help=True)


def render_options(settings: Settings) -> RenderOptions:
    from scripts.asterisk_render import RenderOptions

    ast = settings.asterisk
    return RenderOptions(
        fastagi=tuple(ast.fastagi_hosts or [f"{settings.agi.host}:{settings.agi.port}"]),
        ami_user=settings.ami.username,
        ami_secret=settings.ami.secret,
        ami_port=settings.ami.port,
        sip_bind=ast.sip_bind,
        sip_port=ast.sip_port,
        dial_template=ast.dial_template,
        trunk_host=ast.trunk_host,
        system_name=ast.system_name,
        max_ring_seconds=ast.max_ring_seconds,
        log_dir=ast.log_dir,
    )


@app.command("render")
def render_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the .conf files to.")],
) -> None:
    """Write extensions.conf, pjsip.conf, manager.conf, cdr*.conf, modules.conf … into OUT."""
    from scripts.asterisk_render import render

    settings = settings_of(ctx)
    if not settings.ami.secret:
        fail("set an AMI secret first (PRIVNUM_AMI__SECRET or [ami] secret in the config file)")
    try:
        options = render_options(settings)
    except ValueError as exc:
        fail(f"cannot render the Asterisk configuration: {exc}")
    try:
        written = render(options, out)
    except OSError as exc:
        fail(f"cannot write to {out}: {exc.strerror or exc}")
    for path in written:
        typer.echo(str(path))
