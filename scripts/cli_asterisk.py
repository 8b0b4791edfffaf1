"""``privnum asterisk render|check``: the Asterisk configuration filled from the settings, and
a check of an existing one."""

from __future__ import annotations

import json
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scripts.cli_support import fail, settings_of

if TYPE_CHECKING:
    from scripts.asterisk_render import RenderOptions
    from scripts.settings import Settings

app = typer.Typer(no_args_is_help=True)


def render_options(settings: Settings, secret: str | None = None) -> RenderOptions:
    from scripts.asterisk_render import RenderOptions

    ast = settings.asterisk
    return RenderOptions(
        fastagi=tuple(ast.fastagi_hosts or [f"{settings.agi.host}:{settings.agi.port}"]),
        ami_user=settings.ami.username,
        ami_secret=settings.ami.secret if secret is None else secret,
        ami_port=settings.ami.port,
        sip_bind=ast.sip_bind,
        sip_port=ast.sip_port,
        dial_template=ast.dial_template,
        trunk_host=ast.trunk_host,
        # What privnum expects in CDRs (agi.system_name) is what Asterisk must be called.
        system_name=settings.agi.system_name or ast.system_name,
        max_ring_seconds=ast.max_ring_seconds,
        log_dir=ast.log_dir,
        recording_dir=settings.asterisk_recording_dir,
    )


class Mode(StrEnum):
    FULL = "full"
    INCLUDE = "include"


@app.command("render")
def render_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the .conf files to.")],
    mode: Annotated[Mode, typer.Option(
        help="full: a whole /etc/asterisk for a fresh box (or the lab); include: only "
             "privnum's parts (*_privnum.conf) for a PBX that has its own configuration.")
    ] = Mode.FULL,
    with_transports: Annotated[bool, typer.Option(
        "--with-transports", help="Include mode: privnum's own PJSIP transports too (for a "
        "PBX without any; full mode always has them).")] = False,
) -> None:
    """Write the Asterisk configuration for privnum into OUT.

    Full mode: extensions.conf, pjsip.conf, manager.conf, cdr*.conf, modules.conf ... Include
    mode: extensions_privnum.conf, pjsip_privnum.conf, manager_privnum.conf,
    cdr_manager_privnum.conf, cdr_custom_privnum.conf, then the #include lines, settings and
    modules to add to the PBX's own files."""
    from scripts.asterisk_include import plan, write
    from scripts.asterisk_render import render

    settings = settings_of(ctx)
    if not settings.ami.secret:
        fail("set an AMI secret first (PRIVNUM_AMI__SECRET or [ami] secret in the config file)")
    try:
        options = render_options(settings)
        if mode is Mode.INCLUDE:
            options = replace(options, own_transports=with_transports)
    except ValueError as exc:
        fail(f"cannot render the Asterisk configuration: {exc}")
    try:
        if mode is Mode.FULL:
            written = render(options, out)
        else:
            include = plan(options)
            written = write(include, out)
    except OSError as exc:
        fail(f"cannot write to {out}: {exc.strerror or exc}")
    for path in written:
        typer.echo(str(path))
    if mode is Mode.INCLUDE:
        typer.echo("\n".join(include.instructions()))


@app.command("check")
def check_command(
    ctx: typer.Context,
    etc: Annotated[Path, typer.Argument(help="Asterisk's configuration directory.")] = Path(
        "/etc/asterisk"),
    as_json: Annotated[bool, typer.Option("--json", help="Findings as one JSON object.")] = False,
) -> None:
    """Check an existing Asterisk configuration for what privnum needs (read only).

    One line per finding: privnum's files included, name collisions, modules, system name,
    AMI privileges, the CDR CSV path. Exit 0 when nothing is wrong, 1 otherwise."""
    from scripts.asterisk_check import Needs, check

    settings = settings_of(ctx)
    try:
        # The secret only fills the templates here; it is compared only when one is set.
        options = render_options(settings, secret=settings.ami.secret or "not-compared")
    except ValueError as exc:
        fail(f"cannot work out privnum's Asterisk configuration: {exc}")
    needs = Needs.of(options, csv_dir=settings.cdr_csv_dir, ami_secret=settings.ami.secret)
    findings = check(etc, needs)
    problems = sum(not f.ok for f in findings)
    if as_json:
        typer.echo(json.dumps({"directory": str(etc), "problems": problems, "findings": [
            {"ok": f.ok, "topic": f.topic, "message": f.message} for f in findings]}, indent=2))
    else:
        for finding in findings:
            typer.echo(finding.line())
        typer.echo(f"{etc}: {problems} problem{'s' if problems != 1 else ''}" if problems
                   else f"{etc}: fits privnum")
    raise typer.Exit(1 if problems else 0)
