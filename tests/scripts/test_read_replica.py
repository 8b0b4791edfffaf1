"""``database.read_url`` on a real streaming replica started by the test: the API's call list
and CSV export, ``privnum calls list`` and ``privnum cdr export`` read the replica (with its
replay paused, a call written on the primary is not there yet; resumed, it is), and the read
engine refuses writes, replica or not. A replica that is down only takes the call log down."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from api.metrics import Metrics
from binding_store import migrate
from binding_store.crypto import KeyRing
from binding_store.db import Database
from binding_store.models import Shop
from binding_store.tokens import TokenStore
from scripts import container as wiring
from scripts.container import open_container
from scripts.http_service import api_services
from scripts.settings import Settings
from tests.binding_store.call_log_weeks import every, write_calls
from tests.fixtures.ami.scenario import SHOP, seed
from tests.pg_replica import StreamingPair, streaming_pair
from tests.scripts.cli_helpers import Cli

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def pair() -> Iterator[StreamingPair]:
    with streaming_pair() as started:
        migrate.upgrade(started.primary_url)
        started.caught_up()  # the schema is on the replica too
        yield started


def _settings(tmp_path: Path, pair: StreamingPair) -> Settings:
    keys = tmp_path / "keys.json"
    KeyRing.generate().save(keys)
    return Settings(data_dir=tmp_path, keys={"file": keys},
                    database={"url": pair.primary_url, "read_url": pair.replica_url})


async def _count_via_api(client: httpx.AsyncClient, token: str) -> tuple[int, int]:
    auth = {"Authorization": f"Bearer {token}"}
    listed = await client.get(f"/v1/shops/{SHOP}/calls", headers=auth, params={"limit": 500})
    exported = await client.get(f"/v1/shops/{SHOP}/calls/export", headers=auth)
    assert listed.status_code == 200 and exported.status_code == 200, listed.text
    return len(listed.json()["calls"]), len(exported.text.strip().splitlines()) - 1


async def test_the_read_engine_refuses_writes(pair: StreamingPair, tmp_path: Path) -> None:
    settings = _settings(tmp_path, pair)
    on_primary = Settings(data_dir=tmp_path, database={"url": pair.primary_url})
    now = datetime.now(UTC)
    for where in (settings, on_primary):  # the replica, and the primary through read_database
        db = wiring.read_database(where)
        try:
            with pytest.raises(DBAPIError, match="read-only transaction"):
                async with db.session() as s:
                    await s.execute(insert(Shop).values(id="nope", created_at=now,
                                                        updated_at=now))
                    await s.commit()
        finally:
            await db.dispose()


async def test_call_log_reads_are_served_by_the_replica(pair: StreamingPair,
                                                        tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    primary = Database(pair.primary_url, timeout=10.0)
    settings = _settings(tmp_path, pair)
    try:
        await seed(primary, attempts=False)
        await write_calls(primary, every(now - timedelta(hours=10), timedelta(hours=1), 6), "a")
        token = (await TokenStore(primary).issue(now=now, admin=True)).secret
        pair.caught_up()
        async with open_container(settings) as container:
            app = create_app(api_services(container, Metrics()))
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://privnum.test") as client:
                assert await _count_via_api(client, token) == (6, 6)
                health = (await client.get("/healthz")).json()
                replica = next(c for c in health["checks"] if c["name"] == "database_read")
                assert replica["ok"] and "standby" in replica["detail"]

                pair.pause_replay()  # what the API shows now is the replica's state
                await write_calls(primary, [now - timedelta(minutes=5)], "b")
                assert await _count_via_api(client, token) == (6, 6)
                cli = Cli(data_dir=tmp_path, database_url=pair.primary_url)
                assert await asyncio.to_thread(_cli_counts, cli, pair, tmp_path, now) == (6, 6)

                pair.resume_replay()
                pair.caught_up()
                assert await _count_via_api(client, token) == (7, 7)
                assert await asyncio.to_thread(_cli_counts, cli, pair, tmp_path, now) == (7, 7)

                # Replica down: the call log answers 503, the service is degraded, not down.
                pair.stop_replica()
                auth = {"Authorization": f"Bearer {token}"}
                down = await client.get(f"/v1/shops/{SHOP}/calls", headers=auth)
                assert down.status_code == 503 and down.json()["code"] == "store_unavailable"
                health = await client.get("/healthz")
                assert health.status_code == 200 and health.json()["status"] == "degraded"
    finally:
        await primary.dispose()


def _cli_counts(cli: Cli, pair: StreamingPair, tmp_path: Path, now: datetime
                ) -> tuple[int, int]:
    """Calls listed by ``privnum calls list`` and exported by ``privnum cdr export`` (the CLI
    runs its own event loop: call this in a thread)."""
    env = {"PRIVNUM_DATABASE__READ_URL": pair.replica_url}
    listed = cli("calls", "list", "--shop", SHOP, "--limit", "500", env=env)
    assert listed.exit_code == 0, listed.output
    out = tmp_path / "calls.csv"
    exported = cli("cdr", "export", "--from", f"{now - timedelta(days=1):%Y-%m-%d}", "--to",
                   f"{now + timedelta(days=1):%Y-%m-%d}", "--shop", SHOP, "--out", str(out),
                   "-q", env=env)
    assert exported.exit_code == 0, exported.output
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    return listed.stdout.count("139****0003"), int(manifest["rows"])
