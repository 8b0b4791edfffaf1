"""A redis-server of our own, on a port from ``PRIVNUM_PRIVATE_REDIS_PORTS`` (default
17000-17099) with a data directory we own, for runs that restart or flush Redis: never the
shared one. Snapshots only when asked (``SAVE``), so a restart loads exactly that snapshot.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

PORTS = os.environ.get("PRIVNUM_PRIVATE_REDIS_PORTS", "17000-17099")
_START_TIMEOUT = 15.0


class RedisServerMissing(RuntimeError):
    """No redis-server binary on this machine."""


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server",
                     "/usr/local/bin/redis-server") if Path(p).is_file()), None)
    if found is None:
        raise RedisServerMissing("redis-server not found (Debian: apt-get install redis-server)")
    return found


def _free_port() -> int:
    low, _, high = PORTS.partition("-")
    for port in range(int(low), int(high or low) + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS} for a private redis-server")


class PrivateRedis:
    def __init__(self, data_dir: Path) -> None:
        self.binary = redis_server_binary()
        self.dir = data_dir
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # The server keeps its own clock: a clock faked for this process (libfaketime, to run
        # the suite at another date) must not reach it, and redis-server cannot run under it.
        env = {k: v for k, v in os.environ.items()
               if k not in ("LD_PRELOAD", "FAKETIME") and not k.startswith("FAKETIME_")}
        self._proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                with self.client() as probe:
                    if probe.ping():
                        return
            except redis.RedisError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "redis.log")
                tail = log.read_text()[-500:] if log.exists() else ""
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start: {tail}")
            time.sleep(0.05)

    def save(self) -> None:
        """Snapshot now (``dump.rdb``); a later restart loads it."""
        with self.client() as c:
            c.save()

    def restart_from_snapshot(self) -> None:
        """Stop without saving and start again: Redis comes back as the last snapshot was."""
        with self.client() as c, contextlib.suppress(redis.ConnectionError):
            c.shutdown(nosave=True)  # the server closes the connection as it goes
        self._wait()
        self.start()

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
        self._wait()

    def _wait(self) -> None:
        if self._proc is None:
            return
        try:
            self._proc.wait(timeout=_START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=_START_TIMEOUT)
        self._proc = None


@contextmanager
def private_redis(data_dir: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(data_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
