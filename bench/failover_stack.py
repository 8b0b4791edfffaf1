"""What a failover run stands on: one database (PostgreSQL, or a shared SQLite file), a shop
with a pool and an account token, and ``privnum serve`` nodes as real processes, each reaching
Redis through the Sentinels of a :class:`~bench.sentinel_group.SentinelGroup`.

Nodes are started and killed by PID (their own process group), never by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.sentinel_group import SERVICE, SentinelGroup, free_ports
from binding_store import migrate
from binding_store.crypto import KeyRing
from binding_store.db import Database
from binding_store.pool import PoolRepository
from binding_store.shops import ShopRepository
from binding_store.tokens import TokenStore

SHOP = "shop-fo"
MAIN_ACCOUNT = "shop-fo-main"
MAIN_PHONE = "+8613800000001"
SYSTEM_NAME = "failover"
READY_LINE = "privnum serving FastAGI on"
READY_TIMEOUT = 60.0
RISK_POLICY = """\
[risk]
plaintext_enabled = false
velocity_limit = 1000000
velocity_window_seconds = 60
"""
PRIVNUM = str(Path(sys.executable).parent / "privnum")
_COUNTER = re.compile(r'^privnum_route_lookups_total\{source="(\w+)"\} (\S+)$', re.M)


def pool_number(i: int) -> str:
    return f"+86170{i:08d}"


def buyer_number(i: int) -> str:
    return f"+86139{i:08d}"


@dataclass
class Node:
    """One ``privnum serve`` (FastAGI + HTTP API), its own data dir and log."""

    name: str
    agi_port: int
    api_port: int
    env: dict[str, str]
    log_file: Path
    proc: subprocess.Popen[bytes] | None = None
    killed_at: float | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        with self.log_file.open("ab") as out:
            self.proc = subprocess.Popen([PRIVNUM, "serve"], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while READY_LINE not in self.log():
            if not self.alive or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def kill(self) -> None:
        """SIGKILL to its process group: a crash, no drain."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.killed_at = time.monotonic()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Stack:
    workdir: Path
    database_url: str
    redis: SentinelGroup
    prefix: str
    nodes: list[Node] = field(default_factory=list)
    token: str = ""
    platform_token: str = ""

    def settings_env(self) -> dict[str, str]:
        """What every node and the harness's own store share (``PRIVNUM_*``)."""
        return {
            "PRIVNUM_DATABASE__URL": self.database_url,
            "PRIVNUM_DATABASE__PARTITION_CHECK_SECONDS": "0",
            "PRIVNUM_REDIS__SENTINELS": json.dumps(self.redis.sentinel_addresses),
            "PRIVNUM_REDIS__SERVICE_NAME": SERVICE,
            "PRIVNUM_REDIS__PREFIX": self.prefix,
            "PRIVNUM_KEYS__FILE": str(self.workdir / "keys.json"),
            "PRIVNUM_BINDINGS__COOLDOWN_SECONDS": "0",
            "PRIVNUM_RISK_POLICY_FILE": str(self.workdir / "risk.toml"),
            "PRIVNUM_AGI__SYSTEM_NAME": SYSTEM_NAME,
            "PRIVNUM_WEBHOOKS__ENABLED": "false",
        }

    async def prepare(self, pool_size: int) -> None:
        """Schema, keys, the shop (main account and phone), pool, risk policy, a token."""
        await asyncio.to_thread(migrate.upgrade, self.database_url)
        KeyRing.generate().save(self.workdir / "keys.json")
        (self.workdir / "risk.toml").write_text(RISK_POLICY, encoding="utf-8")
        db = Database(self.database_url, timeout=30.0)
        try:
            at = datetime.now(UTC)
            await ShopRepository(db).enable(SHOP, now=at, main_account_id=MAIN_ACCOUNT,
                                            main_phone=MAIN_PHONE, agreement_version="v1")
            rows = ["number,region"] + [f"{pool_number(i)},fo" for i in range(pool_size)]
            await PoolRepository(db).import_csv(rows, now=at)
            issued = await TokenStore(db).issue(now=at, shop_id=SHOP, account_id=MAIN_ACCOUNT,
                                                label="failover")
            self.token = issued.secret
            platform = await TokenStore(db).issue(now=at, admin=True, label="failover")
            self.platform_token = platform.secret
        finally:
            await db.dispose()

    def add_nodes(self, count: int) -> None:
        taken = frozenset([self.redis.master.port, self.redis.replica.port,
                           *(s.port for s in self.redis.sentinels)])
        ports = free_ports(2 * count, taken=taken)
        base = {k: v for k, v in os.environ.items() if not k.startswith("PRIVNUM_")}
        for i in range(count):
            name = f"node{i + 1}"
            data = self.workdir / name
            data.mkdir(parents=True, exist_ok=True)
            agi_port, api_port = ports[2 * i], ports[2 * i + 1]
            env = {**base, **self.settings_env(), "PRIVNUM_DATA_DIR": str(data),
                   "PRIVNUM_AGI__HOST": "127.0.0.1", "PRIVNUM_AGI__PORT": str(agi_port),
                   "PRIVNUM_API__HOST": "127.0.0.1", "PRIVNUM_API__PORT": str(api_port),
                   "PRIVNUM_AMI__ENABLED": "false", "PRIVNUM_LOG_LEVEL": "INFO",
                   "NO_COLOR": "1"}
            self.nodes.append(Node(name, agi_port, api_port, env, data / "serve.log"))

    def start_nodes(self) -> None:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready()

    def stop_nodes(self) -> None:
        for node in self.nodes:
            node.stop()


class NodeApi:
    """The shop's account, talking to one node's HTTP API."""

    def __init__(self, token: str, platform_token: str) -> None:
        self._client = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                         timeout=10.0)
        self._platform = {"Authorization": f"Bearer {platform_token}"}

    async def reveal(self, node: Node, order: str, buyer: str) -> dict[str, Any]:
        """The platform registers the order, then a privacy reveal issues (A = the main
        phone, X, B = ``buyer``); the reveal's response."""
        ordered = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        registered = await self._client.put(
            f"{node.api}/v1/orders/{order}", headers=self._platform,
            json={"shop_id": SHOP, "buyer_number": buyer, "buyer_id": f"u-{order}",
                  "ordered_at": ordered})
        registered.raise_for_status()
        resp = await self._client.post(f"{node.api}/v1/orders/{order}/reveal", json={})
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body

    async def release(self, node: Node, binding_id: str) -> int:
        resp = await self._client.post(f"{node.api}/v1/bindings/{binding_id}/release")
        return resp.status_code

    async def lookups(self, node: Node) -> dict[str, float] | None:
        """``privnum_route_lookups_total`` by source, from the node's /metrics."""
        try:
            resp = await self._client.get(f"{node.api}/metrics", timeout=1.0)
        except httpx.HTTPError:
            return None
        return {m[1]: float(m[2]) for m in _COUNTER.finditer(resp.text)}

    async def aclose(self) -> None:
        await self._client.aclose()
