from __future__ import annotations

import asyncio
import json
import stat
from datetime import timedelta

import pytest
from sqlalchemy import select

from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.key_rotation import reencrypt
from binding_store.models import AuditEvent, Binding, PoolNumber, Shop
from tests.binding_store.shop_helpers import NOW
from tests.scripts.cli_helpers import Cli, one_line_error, write


class Interrupted(Exception):
    pass


BUYERS = [f"+86139{i:08d}" for i in range(1, 8)]


async def _seed(url: str, cipher: BuyerCipher) -> None:
    db = Database(url, timeout=5.0)
    try:
        async with db.session() as s:
            s.add(Shop(id="s1", name="", created_at=NOW, updated_at=NOW))
            s.add(PoolNumber(number="+8617000000001", region="", created_at=NOW))
            await s.flush()
            for i, buyer in enumerate(BUYERS):
                s.add(Binding(id=f"b{i:02d}", shop_id="s1", order_id=f"o{i}",
                              caller_a=f"+86138{i:08d}", virtual_x="+8617000000001",
                              buyer_cipher=cipher.encrypt(buyer),
                              buyer_bidx=cipher.blind_index(buyer), buyer_masked="x",
                              created_at=NOW, expires_at=NOW + timedelta(hours=24)))
            await s.commit()
    finally:
        await db.dispose()


async def _rows(url: str) -> list[tuple[str, bytes, str]]:
    db = Database(url, timeout=5.0)
    try:
        async with db.session() as s:
            rows = (await s.execute(select(Binding.id, Binding.buyer_cipher, Binding.buyer_bidx)
                                    .order_by(Binding.id))).all()
            return [(r[0], bytes(r[1]), r[2]) for r in rows]
    finally:
        await db.dispose()


def _ready(cli: Cli) -> KeyRing:
    cli.ok("db", "upgrade")
    cli.ok("keys", "generate")
    ring = KeyRing.load(cli.keys_file)
    asyncio.run(_seed(cli.database_url, BuyerCipher(ring)))
    return ring


def test_generate_refuses_to_overwrite(lite: Cli) -> None:
    out = lite.ok("keys", "generate")
    assert str(lite.keys_file) in out
    assert stat.S_IMODE(lite.keys_file.stat().st_mode) == 0o600
    first = lite.keys_file.read_text()
    one_line_error(lite("keys", "generate"), "already exists", "--force")
    assert lite.keys_file.read_text() == first
    quiet = lite("keys", "generate", "--if-missing")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")
    assert lite.keys_file.read_text() == first
    out = lite.ok("keys", "generate", "--force")
    assert "previous key file kept as" in out
    assert lite.keys_file.read_text() != first
    backups = list(lite.data_dir.glob("keys.json.replaced-*"))
    assert [b.read_text() for b in backups] == [first]


def test_generate_if_missing_creates(lite: Cli) -> None:
    lite.ok("keys", "generate", "--if-missing")
    assert KeyRing.load(lite.keys_file).current


def test_rotate_reencrypts_every_binding(cli: Cli) -> None:
    old = _ready(cli)
    before = asyncio.run(_rows(cli.database_url))
    out = cli.ok("keys", "rotate", "--batch-size", "3")
    new = KeyRing.load(cli.keys_file)
    assert new.current != old.current and set(new.keys) == {old.current, new.current}
    assert new.index_key == old.index_key
    assert f"key {new.current}: re-encrypted 7 binding(s), 0 already" in out
    cipher = BuyerCipher(new)
    after = asyncio.run(_rows(cli.database_url))
    assert [cipher.key_id_of(blob) for _, blob, _ in after] == [new.current] * 7
    assert [cipher.decrypt(blob) for _, blob, _ in after] == BUYERS
    assert [bidx for *_, bidx in after] == [bidx for *_, bidx in before]  # never rotates
    assert all(a[1] != b[1] for a, b in zip(after, before, strict=True))

    async def events() -> list[str]:
        db = Database(cli.database_url)
        try:
            async with db.session() as s:
                return list((await s.scalars(select(AuditEvent.subject).where(
                    AuditEvent.kind == "keys.rotated"))).all())
        finally:
            await db.dispose()

    assert asyncio.run(events()) == [new.current]


def test_rotate_resumes_and_skips_current_bindings(lite: Cli) -> None:
    old = _ready(lite)
    # An interrupted rotation: the new key is saved, only the first batch was re-encrypted.
    ring = old.with_new_key()
    ring.save(lite.keys_file)

    async def first_batch_only() -> None:
        db = Database(lite.database_url)
        try:
            calls = 0

            def stop(_: int) -> None:
                nonlocal calls
                calls += 1
                if calls == 1:
                    raise Interrupted

            with pytest.raises(Interrupted):
                await reencrypt(db, BuyerCipher(ring), 3, stop)
        finally:
            await db.dispose()

    asyncio.run(first_batch_only())
    out = lite.ok("keys", "rotate", "--resume", "--batch-size", "2")
    assert f"key {ring.current}: re-encrypted 4 binding(s), 3 already under it" in out
    assert set(KeyRing.load(lite.keys_file).keys) == set(ring.keys)  # no key added
    cipher = BuyerCipher(ring)
    rows = asyncio.run(_rows(lite.database_url))
    assert [cipher.decrypt(blob) for _, blob, _ in rows] == BUYERS
    assert {cipher.key_id_of(blob) for _, blob, _ in rows} == {ring.current}


def test_rotate_with_the_wrong_key_file_changes_nothing(lite: Cli) -> None:
    _ready(lite)
    before = asyncio.run(_rows(lite.database_url))
    lite.ok("keys", "generate", "--force")  # a different key file
    replaced = lite.keys_file.read_text()
    one_line_error(lite("keys", "rotate"), "binding b00", "not in the key file")
    assert lite.keys_file.read_text() == replaced
    assert asyncio.run(_rows(lite.database_url)) == before


def test_rotate_with_a_tampered_key_is_refused(lite: Cli) -> None:
    ring = _ready(lite)
    forged = KeyRing(keys={ring.current: bytes(32)}, current=ring.current,
                     index_key=ring.index_key)
    forged.save(lite.keys_file)
    one_line_error(lite("keys", "rotate"), "does not decrypt", "wrong key file")


def test_missing_or_malformed_key_file_is_one_line(lite: Cli) -> None:
    lite.ok("db", "upgrade")
    one_line_error(lite("keys", "rotate"), "not found", "privnum keys generate")
    write(lite.keys_file, "{not json")
    one_line_error(lite("keys", "rotate"), "cannot read key file")
    write(lite.keys_file, json.dumps({"current": "k1", "keys": {"k1": "AAAA"},
                                      "index_key": "AAAA"}))
    one_line_error(lite("keys", "rotate"), "malformed")


def test_rotate_with_no_bindings(lite: Cli) -> None:
    lite.ok("db", "upgrade")
    lite.ok("keys", "generate")
    assert "re-encrypted 0 binding(s)" in lite.ok("keys", "rotate")
    assert len(KeyRing.load(lite.keys_file).keys) == 2
