"""The order store: the buyer number only as ciphertext, replaced values audited once, and
key rotation re-encrypts registered orders with the bindings (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.key_rotation import (
    RotationResult,
    order_count,
    reencrypt_orders,
    verify_order_keys,
)
from binding_store.orders import OrderStore
from routing.errors import ConfigurationError, NotFound
from routing.orders import OrderStatus

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
BUYER = "+8613912345678"


async def put(store: OrderStore, order: str, buyer: str = BUYER) -> None:
    await store.put(shop_id="s1", order_id=order, buyer_number=buyer, buyer_id="b1",
                    ordered_at=NOW - timedelta(hours=1), status=OrderStatus.PAID,
                    actor="platform:t1", now=NOW)


async def test_orders_are_encrypted_and_rotate_with_the_key(database: Database,
                                                            keyring: KeyRing) -> None:
    store = OrderStore(database, BuyerCipher(keyring))
    for i in range(5):
        await put(store, f"o-{i}")
    got = await store.get("s1", "o-3")
    assert got.buyer_number == BUYER and got.buyer_masked == "139****5678"
    with pytest.raises(NotFound):
        await store.get("s2", "o-3")
    async with database.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM orders"))).all()
    assert "13912345678" not in repr(rows)

    rotated = BuyerCipher(keyring.with_new_key())
    await verify_order_keys(database, rotated, 2)
    result = await reencrypt_orders(database, rotated, 2, RotationResult(key_id="k"))
    assert result.orders_reencrypted == await order_count(database) == 5
    after = OrderStore(database, rotated)
    assert (await after.get("s1", "o-4")).buyer_number == BUYER
    async with database.engine.connect() as conn:
        blobs = (await conn.execute(text("SELECT buyer_cipher FROM orders"))).scalars().all()
    assert {rotated.key_id_of(bytes(b)) for b in blobs} == {rotated.current_key_id}
    with pytest.raises(ConfigurationError):  # a key file without the key in use is refused
        await verify_order_keys(database, BuyerCipher(KeyRing.generate()), 2)
