"""Key rotation in the store: check every key id in use decrypts, then re-encrypt each
binding's buyer number under the current key, batch by batch (``privnum keys rotate``); the
orders the platform registered hold buyer numbers too and follow the bindings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, tuple_, update

from binding_store.api_models import Order
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.models import Binding
from routing.errors import ConfigurationError


@dataclass
class RotationResult:
    key_id: str
    reencrypted: int = 0
    already_current: int = 0
    orders_reencrypted: int = 0


async def binding_count(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Binding)) or 0)


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


async def order_count(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


async def _order_batches(db: Database, batch_size: int, after: tuple[str, str]
                         ) -> list[tuple[tuple[str, str], bytes]]:
    async with db.session() as session:
        rows = (await session.execute(
            select(Order.shop_id, Order.order_id, Order.buyer_cipher)
            .where(tuple_(Order.shop_id, Order.order_id) > after)
            .order_by(Order.shop_id, Order.order_id).limit(batch_size))).all()
    return [((r[0], r[1]), bytes(r[2])) for r in rows]


async def verify_order_keys(db: Database, cipher: BuyerCipher, batch_size: int) -> None:
    """Like :func:`verify_keys`, for the registered orders."""
    checked: set[str] = set()
    last = ("", "")
    while rows := await _order_batches(db, batch_size, last):
        for key, blob in rows:
            key_id = cipher.key_id_of(blob)
            if key_id not in checked:
                try:
                    cipher.decrypt(blob)
                except ConfigurationError as exc:
                    raise ConfigurationError(f"order {key[1]} of shop {key[0]}: {exc}") from None
                checked.add(key_id)
        last = rows[-1][0]


async def reencrypt_orders(db: Database, cipher: BuyerCipher, batch_size: int,
                           result: RotationResult) -> RotationResult:
    """Re-encrypt the registered orders' buyer numbers (compare-and-set, like bindings)."""
    table = Order.metadata.tables[Order.__tablename__]
    stmt = (update(table)
            .where(table.c.shop_id == bindparam("o_shop"), table.c.order_id == bindparam("o_id"),
                   table.c.buyer_cipher == bindparam("old"))
            .values(buyer_cipher=bindparam("new")))
    last = ("", "")
    while rows := await _order_batches(db, batch_size, last):
        changes = [{"o_shop": key[0], "o_id": key[1], "old": blob,
                    "new": cipher.encrypt(cipher.decrypt(blob))}
                   for key, blob in rows if cipher.key_id_of(blob) != cipher.current_key_id]
        if changes:
            async with db.session() as session:
                await session.execute(stmt, changes)
                await session.commit()
            result.orders_reencrypted += len(changes)
        last = rows[-1][0]
    return result
