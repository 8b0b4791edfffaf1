"""The start-up check that the key file opens every active binding, on SQLite and PostgreSQL."""

from __future__ import annotations

import os

import pytest

from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.key_check import active_key_ids, check_active_keys
from routing.errors import ConfigurationError
from tests.binding_store.test_bindings_helpers import A1, A2, B1, B2, B3, NOW, X1, X2, X3, seed
from tests.binding_store.test_bindings_helpers import store as binding_store


async def test_every_key_id_of_an_active_binding_must_be_in_the_key_file(
        database: Database, keyring: KeyRing) -> None:
    await seed(database, pool=[(X1, "", None), (X2, "", None), (X3, "", None)])
    old, rotated = keyring, keyring.with_new_key()
    latest = rotated.with_new_key()
    await binding_store(database, BuyerCipher(old)).issue("s1", "o1", "", A1, B1, NOW, actor="t")
    await binding_store(database, BuyerCipher(rotated)).issue("s1", "o2", "", A2, B2, NOW,
                                                              actor="t")
    ended = await binding_store(database, BuyerCipher(latest)).issue("s1", "o3", "", A1, B3,
                                                                     NOW, actor="t")
    await binding_store(database, BuyerCipher(latest)).release(ended.binding_id, actor="t",
                                                               now=NOW)
    assert set(await active_key_ids(database)) == {old.current, rotated.current}

    assert await check_active_keys(database, BuyerCipher(latest), "keys.json") == 2
    # A key file without the rotated key: refused, naming the missing id, in one line.
    without = KeyRing(keys={k: v for k, v in latest.keys.items() if k != rotated.current},
                      current=latest.current, index_key=latest.index_key)
    with pytest.raises(ConfigurationError) as missing:
        await check_active_keys(database, BuyerCipher(without), "keys.json")
    message = str(missing.value)
    assert rotated.current in message and old.current not in message and "\n" not in message
    # The right id with the wrong bytes (a key file from another installation): refused too.
    wrong = KeyRing(keys={**latest.keys, old.current: os.urandom(32)}, current=latest.current,
                    index_key=latest.index_key)
    with pytest.raises(ConfigurationError, match="does not decrypt"):
        await check_active_keys(database, BuyerCipher(wrong), "keys.json")


async def test_no_active_binding_needs_no_key(database: Database, keyring: KeyRing) -> None:
    await seed(database)
    assert await active_key_ids(database) == {}
    assert await check_active_keys(database, BuyerCipher(keyring), "keys.json") == 0
