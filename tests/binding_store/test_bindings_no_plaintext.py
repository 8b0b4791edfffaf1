"""No plaintext buyer number at rest: the SQLite file, a PostgreSQL dump, every Redis value."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.index_rebuild import rebuild_index
from binding_store.redis_index import RedisIndex
from binding_store.route_lookup import StoreRouteLookup
from routing.model import Action, CallAttempt, Direction
from routing.numbers import mask
from routing.reasons import Reason
from tests.binding_store.test_bindings_helpers import A1, A2, X1, X2, seed, store

SECRET_E164 = "+8613912345678"
FORMS = [SECRET_E164.encode(), b"13912345678", "13912345678".encode("utf-16-le")]


async def _write_everything(db: Database, cipher: BuyerCipher, index: RedisIndex | None
                            ) -> None:
    now = datetime.now(UTC)
    await seed(db, pool=[(X1, "", None), (X2, "", None)])
    bindings = store(db, cipher, index)
    first = await bindings.issue("s1", "o1", "buyer-9", A1, "139 1234 5678", now, actor="t")
    await bindings.switch_caller(first.binding_id, A2, actor="t", now=now)
    await bindings.issue("s1", "o2", "buyer-9", A1, "0086 139-1234-5678", now,
                         ttl=timedelta(minutes=1), actor="t")
    lookup = StoreRouteLookup(db, cipher, index=index)
    context = await lookup.find_for_call(SECRET_E164, X1, now)
    assert context.bindings and context.bindings[0].buyer_b == SECRET_E164  # in memory only
    await lookup.record(CallAttempt(
        uniqueid="1.1", linkedid="1.1", at=now, caller_masked=mask(SECRET_E164), caller_a=A2,
        virtual_x=X1, action=Action.BRIDGE, reason=Reason.BRIDGED,
        direction=Direction.CALLBACK, binding_id=context.bindings[0].binding_id, shop_id="s1",
        order_id="o1"))


def _assert_clean(blob: bytes, where: str) -> None:
    for form in FORMS:
        assert form not in blob, f"plaintext buyer number found in {where}"


async def test_sqlite_file_holds_no_plaintext(sqlite_url: str, cipher: BuyerCipher) -> None:
    from tests.conftest import _fresh

    db = await _fresh(sqlite_url)
    try:
        await _write_everything(db, cipher, None)
    finally:
        await db.dispose()
    path = Path(make_url(sqlite_url).database or "")
    files = await asyncio.to_thread(_files_of, path)
    assert path in files
    for name, blob in files.items():  # the database and any WAL/SHM left behind
        _assert_clean(blob, name.name)
    assert b"139****5678" in files[path]  # the scan does see the rows


def _files_of(path: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name)}


@pytest.mark.postgres
async def test_postgres_dump_holds_no_plaintext(pg_database: Database, pg_url: str,
                                                cipher: BuyerCipher) -> None:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.fail("pg_dump is missing: apt-get install postgresql-client")
    await _write_everything(pg_database, cipher, None)
    dump = (await asyncio.to_thread(
        subprocess.run,
        [pg_dump, "--data-only", pg_url.replace("postgresql+psycopg://", "postgresql://", 1)],
        check=True, capture_output=True, timeout=60)).stdout
    assert b"139****5678" in dump
    _assert_clean(dump, "pg_dump")


@pytest.mark.redis
async def test_redis_values_hold_no_plaintext(database: Database, cipher: BuyerCipher,
                                              redis_url: str, redis_prefix: str) -> None:
    index = RedisIndex.from_url(redis_url, prefix=redis_prefix, timeout=2.0)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        await _write_everything(database, cipher, index)
        await rebuild_index(index, database, now=datetime.now(UTC))
        seen = 0
        async for key in raw.scan_iter(match=f"{redis_prefix}:*"):
            if await raw.type(key) == b"set":  # the pool: X numbers, one per member
                value = b" ".join(sorted(await raw.smembers(key)))
            elif await raw.type(key) == b"string":
                value = await raw.get(key)
            else:
                value = await raw.dump(key) or b""
            assert value is not None
            _assert_clean(key + b" " + value, key.decode())
            seen += 1
        assert seen >= 4
    finally:
        await raw.aclose()
        await index.close()

