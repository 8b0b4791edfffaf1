"""The hot index on Redis Cluster: a one-node cluster (all 16384 slots on one
``redis-server --cluster-enabled yes`` of our own) refuses any script or command whose keys
are in different slots, as every cluster does. Issue, look-up with states, release, seed and
rebuild all run there, and every index key lands in the slot of the ``{prefix}`` tag."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from bench.private_redis import RedisServerMissing, redis_server_binary
from bench.sentinel_group import free_ports
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.index_rebuild import rebuild_index
from binding_store.redis_index import RedisIndex, ShopState
from binding_store.route_lookup import StoreRouteLookup
from tests.binding_store.test_bindings_helpers import A1, B1, X1, X2, seed, store

pytestmark = pytest.mark.redis
PREFIX = "pn-cluster"


@pytest.fixture
def cluster_node(tmp_path: Path) -> Iterator[int]:
    try:
        binary = redis_server_binary()
    except RedisServerMissing as exc:
        pytest.skip(f"no Redis Cluster node to test on: {exc}")
    port = free_ports(1)[0]
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
         "--cluster-enabled", "yes", "--cluster-config-file", str(tmp_path / "nodes.conf"),
         "--save", "", "--appendonly", "no", "--logfile", str(tmp_path / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        client = redis.Redis(port=port, socket_timeout=2)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        while client.cluster("info")["cluster_state"] != "ok":
            assert time.monotonic() < deadline, "the one-node cluster did not come up"
            time.sleep(0.05)
        client.close()
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_node_refuses_keys_of_different_slots(cluster_node: int) -> None:
    """What the test below relies on: a script or command given keys of two slots is an
    error here. (A key a script derives itself is not checked on a node that serves every
    slot: the test below checks that every key it finds shares the tag's slot instead.)"""
    client = redis.Redis(port=cluster_node, socket_timeout=2)
    try:
        with pytest.raises(redis.ResponseError, match="slot"):
            client.eval("return redis.call('GET', KEYS[2])", 2, "{a}:k", "{b}:k")
        with pytest.raises(redis.ResponseError, match="same slot"):
            client.mget("{a}:k", "{b}:k")
    finally:
        client.close()


async def test_every_index_operation_runs_on_one_slot(
        cluster_node: int, sqlite_url: str, cipher: BuyerCipher) -> None:
    from tests.conftest import _fresh

    database: Database = await _fresh(sqlite_url)
    index = RedisIndex.from_url(f"redis://127.0.0.1:{cluster_node}/0", prefix=PREFIX,
                                timeout=2.0)
    try:
        now = datetime.now(UTC)
        await seed(database, pool=[(X1, "", None), (X2, "", None)])
        bindings = store(database, cipher, index)
        await rebuild_index(index, database, now=now)  # watermark, states of s1
        kept = await bindings.issue("s1", "o1", "", A1, B1, now, actor="t")
        gone = await bindings.issue("s1", "o2", "", A1, "+8613900000002", now, actor="t")
        lookup = StoreRouteLookup(database, cipher, index=index)
        for _ in range(2):
            context = await lookup.find_for_call(A1, X1, now)
            assert context.bindings[0].binding_id == kept.binding_id
        assert lookup.index_hits >= 1  # the fast path, on the cluster
        await bindings.release(gone.binding_id, actor="t", now=now)
        await index.write_states(99, shops=[("s1", ShopState("enabled", A1))],
                                 raise_watermark=False)
        report = await rebuild_index(index, database, now=now, force=True)
        assert report.bindings == 1

        client = redis.Redis(port=cluster_node, socket_timeout=2)
        try:
            keys = [k.decode() for k in client.scan_iter(match="*", count=1000)]
        finally:
            client.close()
        assert keys and all(k.startswith(f"{PREFIX}:{{{PREFIX}}}:") for k in keys)
        assert {key_slot(k.encode()) for k in keys} == {key_slot(index.base.encode())}
    finally:
        await index.close()
        await database.dispose()
