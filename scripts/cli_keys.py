"""``privnum keys``: the buyer-number key file (generate, rotate with re-encryption)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import bindparam, func, select, update

from binding_store import audit
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.models import Binding
from routing.audit import AuditKind
from routing.errors import ConfigurationError, PrivnumError
from scripts.cli_support import fail, run, settings_of
from scripts.settings import Settings
from scripts.wiring import open_database, utc_now

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
        f"{result.already_current} already under it", highlight=False)


@dataclass
class RotationResult:
    key_id: str
    reencrypted: int = 0
    already_current: int = 0


async def _rotate(ctx: typer.Context, batch_size: int, resume: bool) -> RotationResult:
    settings: Settings = settings_of(ctx)
    ring = KeyRing.load(settings.keys_file)
    async with open_database(settings) as db:
        await verify_keys(db, BuyerCipher(ring), batch_size)
        if not resume:
            ring = ring.with_new_key()
            try:
                ring.save(settings.keys_file)
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot write key file {settings.keys_file}: {exc.strerror or exc}"
                ) from exc
        cipher = BuyerCipher(ring)
        async with db.session() as session:
            total = int(await session.scalar(select(func.count()).select_from(Binding)) or 0)
        with _progress() as bar:
            task = bar.add_task("re-encrypting", total=total)
            result = await reencrypt(db, cipher, batch_size,
                                     lambda n: bar.update(task, advance=n))
        await audit.AuditLog(db).append(
            now=utc_now(), actor="cli", kind=AuditKind.KEYS_ROTATED, subject=cipher.current_key_id,
            detail={"reencrypted": result.reencrypted, "resumed": resume})
        return result


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)


async def _batches(db: Database, batch_size: int, after: str = ""
                   ) -> list[tuple[str, bytes]]:
    async with db.session() as session:
        rows = (await session.execute(
            select(Binding.id, Binding.buyer_cipher).where(Binding.id > after)
            .order_by(Binding.id).limit(batch_size))).all()
    return [(r[0], bytes(r[1])) for r in rows]


async def verify_keys(db: Database, cipher: BuyerCipher, batch_size: int) -> None:
    """Before touching anything: every key id in use is in the file and really decrypts."""
    checked: set[str] = set()
    last = ""
    while rows := await _batches(db, batch_size, last):
        for binding_id, blob in rows:
            key_id = cipher.key_id_of(blob)
            if key_id not in checked:
                try:
                    cipher.decrypt(blob)
                except ConfigurationError as exc:
                    raise ConfigurationError(f"binding {binding_id}: {exc}") from None
                checked.add(key_id)
        last = rows[-1][0]


async def reencrypt(db: Database, cipher: BuyerCipher, batch_size: int,
                    advance: Callable[[int], None] | None = None) -> RotationResult:
    """Re-encrypt, batch by batch, every binding not already under the current key.

    Each update only applies if the ciphertext is still the one read (compare-and-set), so a
    binding changed meanwhile is left for the next run rather than overwritten.
    """
    result = RotationResult(key_id=cipher.current_key_id)
    table = Binding.metadata.tables[Binding.__tablename__]
    stmt = (update(table)
            .where(table.c.id == bindparam("b_id"), table.c.buyer_cipher == bindparam("old"))
            .values(buyer_cipher=bindparam("new")))
    last = ""
    while rows := await _batches(db, batch_size, last):
        changes = []
        for binding_id, blob in rows:
            if cipher.key_id_of(blob) == cipher.current_key_id:
                result.already_current += 1
                continue
            changes.append({"b_id": binding_id, "old": blob,
                            "new": cipher.encrypt(cipher.decrypt(blob))})
        if changes:
            async with db.session() as session:
                await session.execute(stmt, changes)
                await session.commit()
            result.reencrypted += len(changes)
        last = rows[-1][0]
        if advance is not None:
            advance(len(rows))
    return result
