"""Seeded stores and server processes shared by the routing benchmarks (agi_load, scaling)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import seed
from bench.common import REDIS_URL, ROOT, clear_redis_prefix, redis_prefix, scratch_pg
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.index_rebuild import rebuild_index
from binding_store.redis_index import RedisIndex


@dataclass
class Stores:
    """A seeded population on SQLite and/or PostgreSQL+Redis, and the settings to reach it."""

    tmp: Path
    population: seed.Population
    sqlite_env: dict[str, str] = field(default_factory=dict)
    pg_env: dict[str, str] = field(default_factory=dict)


def base_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVNUM_")}
    env.update(PRIVNUM_DATA_DIR=str(tmp), PRIVNUM_KEYS__FILE=str(tmp / "keys.json"),
               PRIVNUM_AGI__SYSTEM_NAME="bench", PRIVNUM_LOG_LEVEL="WARNING")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@asynccontextmanager
async def seeded_stores(pool_size: int, n_bindings: int, *, sqlite: bool = True,
                        postgres: bool = True, tag: str = "agi") -> AsyncIterator[Stores]:
    tmp = Path(tempfile.mkdtemp(prefix="privnum-bench-"))
    ring = KeyRing.generate()
    ring.save(tmp / "keys.json")
    cipher = BuyerCipher(ring)
    pop = seed.plan(pool_size, n_bindings)
    stores = Stores(tmp=tmp, population=pop)
    now = seed.now_utc()
    prefix = redis_prefix(tag)
    try:
        if sqlite:
            url = f"sqlite+aiosqlite:///{tmp / 'privnum.db'}"
            db = Database(url, timeout=5.0)
            await seed.create_schema(db)
            await seed.seed(db, cipher, pop, now)
            await db.dispose()
            stores.sqlite_env = {**base_env(tmp), "PRIVNUM_DATABASE__URL": url}
        if postgres:
            async with scratch_pg(tag) as pg_url:
                db = Database(pg_url, timeout=30.0)
                await seed.create_schema(db)
                await seed.seed(db, cipher, pop, now)
                index = RedisIndex.from_url(REDIS_URL, prefix=prefix, timeout=30.0)
                await rebuild_index(index, db, now=now, batch=2_000)
                await index.close()
                await db.dispose()
                stores.pg_env = {**base_env(tmp), "PRIVNUM_DATABASE__URL": pg_url,
                                 "PRIVNUM_REDIS__URL": REDIS_URL,
                                 "PRIVNUM_REDIS__PREFIX": prefix}
                yield stores
        else:
            yield stores
    finally:
        clear_redis_prefix(prefix)
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class ServerProcess:
    port: int
    pid: int
    stats: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def agi_server(mode: str, env: dict[str, str], *, profile: Path | None = None,
                     log_dir: Path | None = None) -> AsyncIterator[ServerProcess]:
    """``python -m bench.agi_server`` in its own process; SIGTERM and collect stats at exit."""
    argv = [sys.executable, "-m", "bench.agi_server", mode]
    if profile is not None:
        argv += ["--profile", str(profile)]
    err_path = (log_dir or Path(tempfile.gettempdir())) / f"agi_server_{mode}_{os.getpid()}.log"
    with err_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=err, env=env or base_env(
                Path(tempfile.gettempdir())), cwd=ROOT)
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(60):
            line = await proc.stdout.readline()
        if not line.startswith(b"READY "):
            await proc.wait()
            raise RuntimeError(f"agi server did not start: {err_path.read_text()[-2000:]}")
        server = ServerProcess(port=int(line.split()[1]), pid=proc.pid)
        yield server
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(60):
                    out, _ = await proc.communicate()
            except TimeoutError:
                proc.kill()
                out, _ = await proc.communicate()
            for raw in out.splitlines():
                if raw.startswith(b"STATS "):
                    with contextlib.suppress(ValueError, NameError):
                        server.stats = json.loads(raw[6:])
        with contextlib.suppress(OSError):
            err_path.unlink()
