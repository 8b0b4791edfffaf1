"""``privnum keys``: the buyer-number key file (generate, rotate with re-encryption)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from routing.errors import ConfigurationError, PrivnumError
from scripts.cli_support import container_of, fail, run, settings_of, utc_now

if TYPE_CHECKING:
    from binding_store.key_rotation import RotationResult

app = typer.Typer(no_args_is_help=True)

DEFAULT_BATCH = 500


@app.command("generate")
def generate(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace an existing key file (the old one is kept as a backup).")] = False,
    if_missing: Annotated[bool, typer.Option(
        "--if-missing", help="Do nothing (exit 0) when the key file exists.")] = False,
) -> None:
    """Create the key file (AES-256-GCM key + blind-index key), mode 0600."""
    try:
        path = settings_of(ctx).keys_file
    except PrivnumError as exc:
        fail(str(exc))
    if path.exists():
        if if_missing:
            return
        if not force:
            fail(f"key file {path} already exists; keep it (buyer numbers stored under it need "
                 "it), or pass --force to replace it")
    from binding_store.crypto import KeyRing

    try:
        backup = _backup(path) if path.exists() else None
        ring = KeyRing.generate()
        ring.save(path)
    except OSError as exc:
        fail(f"cannot write key file {path}: {exc.strerror or exc}")
    console = Console()
    if backup is not None:
        console.print(f"previous key file kept as {backup}", highlight=False)
    console.print(f"wrote {path} (key {ring.current})", highlight=False)


def _backup(path: Path) -> Path:
    backup = path.with_name(f"{path.name}.replaced-{utc_now():%Y%m%dT%H%M%S}")
    os.replace(path, backup)
    return backup


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000,
                                            help="Bindings per transaction.")] = DEFAULT_BATCH,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Do not add a key; finish re-encrypting under the current one.")
    ] = False,
) -> None:
    """Add a new current key, then re-encrypt every binding's buyer number under it.

    Batches commit one by one; a binding already under the current key is skipped, so an
    interrupted rotation is finished with --resume. Old keys stay in the file (Redis copies
    and backups may still use them). The blind-index key never changes.
    """
    result = run(lambda: _rotate(ctx, batch_size, resume))
    Console().print(
        f"key {result.key_id}: re-encrypted {result.reencrypted} binding(s), "
        f"{result.already_current} already under it; {result.orders_reencrypted} "
        "registered order(s)", highlight=False)


async def _rotate(ctx: typer.Context, batch_size: int, resume: bool) -> RotationResult:
    from binding_store.crypto import BuyerCipher, KeyRing
    from binding_store.key_rotation import (
        binding_count,
        reencrypt,
        reencrypt_orders,
        verify_keys,
        verify_order_keys,
    )
    from routing.audit import AuditKind

    settings = settings_of(ctx)
    ring = KeyRing.load(settings.keys_file)
    async with container_of(ctx) as container:
        db = container.database
        await verify_keys(db, BuyerCipher(ring), batch_size)
        await verify_order_keys(db, BuyerCipher(ring), batch_size)
        if not resume:
            ring = ring.with_new_key()
            try:
                ring.save(settings.keys_file)
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot write key file {settings.keys_file}: {exc.strerror or exc}"
                ) from exc
        cipher = BuyerCipher(ring)
        total = await binding_count(db)
        with _progress() as bar:
            task = bar.add_task("re-encrypting", total=total)
            result = await reencrypt(db, cipher, batch_size,
                                     lambda n: bar.update(task, advance=n))
        await reencrypt_orders(db, cipher, batch_size, result)
        await container.audit.append(
            now=utc_now(), actor="cli", kind=AuditKind.KEYS_ROTATED, subject=cipher.current_key_id,
            detail={"reencrypted": result.reencrypted, "resumed": resume,
                    "orders_reencrypted": result.orders_reencrypted})
        return result


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)


