"""After a Redis fault the call path re-reads SQL's watermark before it trusts the index
again: the Redis that answers next may be another one (a replica Sentinel promoted) that
missed a change this process never heard of, made on another node just before the fault.
On a private redis-server of our own, restarted from a snapshot taken before that change."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.private_redis import PrivateRedis, RedisServerMissing, private_redis
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.index_rebuild import rebuild_index
from binding_store.redis_index import RedisIndex
from binding_store.route_lookup import StoreRouteLookup
from routing.model import BindingState
from tests.binding_store.test_bindings_helpers import A1, B1, X1, seed, store

pytestmark = pytest.mark.redis


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    try:
        with private_redis(tmp_path / "redis") as started:
            yield started
    except RedisServerMissing as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


async def test_a_change_made_elsewhere_during_a_redis_outage_is_not_undone(
        database: Database, cipher: BuyerCipher, server: PrivateRedis) -> None:
    now = datetime.now(UTC)
    index = RedisIndex.from_url(server.url, prefix="fault", timeout=0.5)
    try:
        await seed(database, pool=[(X1, "", None)])
        issued = await store(database, cipher, index).issue("s1", "o1", "", A1, B1, now,
                                                           actor="t")
        await rebuild_index(index, database, now=now)
        lookup = StoreRouteLookup(database, cipher, index=index, redis_backoff_seconds=0)
        await lookup.find_for_call(A1, X1, now)
        assert lookup.index_hits == 1  # this node trusts the index at the watermark it knows
        server.save()  # what the replica will have: the binding active

        # Another node releases it; its report to Redis is lost with the old master.
        await store(database, cipher).release(issued.binding_id, actor="node2", now=now)
        server.stop()
        (seen,) = (await lookup.find_for_call(A1, X1, now)).bindings  # Redis down: SQL
        assert seen.state is BindingState.RELEASED
        server.start()  # the "promoted replica": loads the snapshot
        stale = await index.lookup(A1, cipher.blind_index(B1), X1)
        assert stale.ax is not None and stale.ax.binding_id == issued.binding_id

        (seen,) = (await lookup.find_for_call(A1, X1, now)).bindings
        assert seen.state is BindingState.RELEASED  # not bridged from the stale index
        assert lookup.stats.index_behind == 1 and lookup.index_hits == 1
    finally:
        await index.close()
