"""Shared fixtures: real SQLite and PostgreSQL databases, a real Redis, keys.

Each pytest run creates its own PostgreSQL database (dropped at the end) and each test its own
Redis key prefix, so concurrent runs on one machine never see each other's data.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from binding_store.all_models import Base
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from tests.pg import scratch_database

REDIS_URL = os.environ.get("PRIVNUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this run (skips only outside CI)."""
    with scratch_database("t") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'privnum.db'}"


async def _fresh(url: str) -> Database:
    db = Database(url, timeout=5.0)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    return db


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty schema on SQLite and on PostgreSQL: store tests run on both."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'privnum.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    db = await _fresh(url)
    yield db
    await db.dispose()


@pytest.fixture
async def pg_database(pg_url: str) -> AsyncIterator[Database]:
    db = await _fresh(pg_url)
    yield db
    await db.dispose()


@pytest.fixture
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix owned by this test; its keys are deleted afterwards."""
    prefix = f"privnum-test-{secrets.token_hex(4)}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"*{prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def keyring() -> KeyRing:
    return KeyRing.generate()


@pytest.fixture
def cipher(keyring: KeyRing) -> BuyerCipher:
    return BuyerCipher(keyring)
