"""A Redis master, one replica and three Sentinels as local processes (``redis-server`` and
``redis-server --sentinel``), on ports from ``PRIVNUM_PRIVATE_REDIS_PORTS`` (default
17000-17099), each with a data directory we own: what a failover run kills and watches.

The Sentinels judge the master down after ``down_after_ms`` without an answer and need two of
three to agree (quorum 2), as a production deployment of three would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench.private_redis import PORTS, redis_server_binary

SERVICE = "privnum-failover"
_START_TIMEOUT = 15.0


def free_ports(count: int, ports: str = PORTS, taken: frozenset[int] = frozenset()
               ) -> list[int]:
    """``count`` ports of the range nobody listens on (bound and released at once)."""
    low, _, high = ports.partition("-")
    found: list[int] = []
    for port in range(int(low), int(high or low) + 1):
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise RuntimeError(f"fewer than {count} free ports in {ports}")


def _clean_env() -> dict[str, str]:
    # The servers keep their own clock: a clock faked for this process must not reach them.
    return {k: v for k, v in os.environ.items()
            if k not in ("LD_PRELOAD", "FAKETIME") and not k.startswith("FAKETIME_")}


@dataclass
class Proc:
    name: str
    port: int
    dir: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def client(self, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout,
                           socket_connect_timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: the process dies without a word (no save, no goodbye to replicas)."""
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def log_tail(self, chars: int = 800) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@dataclass
class SentinelGroup:
    base: Path
    down_after_ms: int = 1000
    master: Proc = field(init=False)
    replica: Proc = field(init=False)
    sentinels: list[Proc] = field(init=False)

    def __post_init__(self) -> None:
        self.binary = redis_server_binary()
        ports = free_ports(5)
        self.master = Proc("master", ports[0], self.base / "master")
        self.replica = Proc("replica", ports[1], self.base / "replica")
        self.sentinels = [Proc(f"sentinel{i}", p, self.base / f"sentinel{i}")
                          for i, p in enumerate(ports[2:])]

    @property
    def sentinel_addresses(self) -> list[str]:
        return [f"127.0.0.1:{s.port}" for s in self.sentinels]

    def start(self) -> None:
        self._server(self.master)
        self._server(self.replica, "--replicaof", "127.0.0.1", str(self.master.port))
        self._wait_replicated()
        for s in self.sentinels:
            s.dir.mkdir(parents=True, exist_ok=True)
            conf = s.dir / "sentinel.conf"  # Sentinel rewrites its file: one each
            conf.write_text(
                f"port {s.port}\nbind 127.0.0.1\ndaemonize no\ndir {s.dir}\n"
                f"logfile {s.dir / 'redis.log'}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n", encoding="utf-8")
            self._spawn(s, [str(conf), "--sentinel"])
        for s in self.sentinels:
            self._wait(s, lambda c: bool(c.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)))
        # Each Sentinel must know the other two and the replica before a failover can be
        # agreed and carried out.
        self._until(lambda: all(self._sees_all(s) for s in self.sentinels),
                    "the Sentinels to discover each other and the replica")

    def _sees_all(self, s: Proc) -> bool:
        with s.client() as c:
            state = c.sentinel_master(SERVICE)
        return (int(state.get("num-other-sentinels", 0)) >= 2
                and int(state.get("num-slaves", 0)) >= 1)

    def master_port(self) -> int | None:
        """Where the Sentinels (the first that answers) say the master is."""
        for s in self.sentinels:
            with contextlib.suppress(redis.RedisError), s.client(0.5) as c:
                addr = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
                if addr:
                    return int(addr[1])
        return None

    def cut_replication(self) -> None:
        """Drop the master's link to its replica and refuse its resync (``PSYNC``/``SYNC``
        taken from the default user, which clients and Sentinels never need): writes made
        from now on reach the master only, as with a replica lagging behind."""
        with self.master.client() as c:
            c.execute_command("ACL", "SETUSER", "default", "-psync", "-sync")
            c.execute_command("CLIENT", "KILL", "TYPE", "replica")

    def stop(self) -> None:
        for p in [*self.sentinels, self.replica, self.master]:
            if p.popen is not None and p.popen.poll() is None:
                p.popen.terminate()
                try:
                    p.popen.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()

    # -- processes ----------------------------------------------------------------------
    def _server(self, p: Proc, *extra: str) -> None:
        p.dir.mkdir(parents=True, exist_ok=True)
        self._spawn(p, ["--port", str(p.port), "--bind", "127.0.0.1", "--dir", str(p.dir),
                        "--save", "", "--appendonly", "no", "--daemonize", "no",
                        "--logfile", str(p.dir / "redis.log"), *extra])
        self._wait(p, lambda c: bool(c.ping()))

    def _spawn(self, p: Proc, args: list[str]) -> None:
        p.popen = subprocess.Popen([self.binary, *args], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env=_clean_env())

    def _wait(self, p: Proc, ready: Callable[[redis.Redis], bool]) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                with p.client() as c:
                    if ready(c):
                        return
            except redis.RedisError:
                pass
            if not p.alive or time.monotonic() > deadline:
                raise RuntimeError(f"{p.name} on port {p.port} did not start: {p.log_tail()}")
            time.sleep(0.05)

    def _wait_replicated(self) -> None:
        def linked() -> bool:
            with self.replica.client() as c:
                return c.info("replication").get("master_link_status") == "up"
        self._until(linked, "the replica to sync")

    @staticmethod
    def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if check():
                    return
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what}")


@contextmanager
def sentinel_group(base: Path, down_after_ms: int = 1000) -> Iterator[SentinelGroup]:
    group = SentinelGroup(base, down_after_ms)
    try:
        group.start()
        yield group
    finally:
        group.stop()
