"""A private PostgreSQL primary and its streaming replica for tests, started by the test itself
(``initdb``, then ``pg_basebackup -R``), on ports 17500-17599, as the ``postgres`` user when
run as root (``runuser``, as ``scripts/lib/bootstrap.sh`` does for its throwaway cluster).
Skips only where the PostgreSQL server binaries cannot be found."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from glob import glob
from pathlib import Path

import psycopg
import pytest

PORTS = range(17500, 17600)
SERVER_TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
STEP_TIMEOUT = 60.0  # seconds, per command


def server_bindir() -> Path | None:
    """The newest PostgreSQL ``bin`` directory holding the server tools."""
    candidates = [Path(p) for p in glob("/usr/lib/postgresql/*/bin")]
    candidates.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                    reverse=True)
    if found := shutil.which("initdb"):
        candidates.append(Path(found).parent)
    for directory in candidates:
        if all((directory / tool).exists() for tool in SERVER_TOOLS):
            return directory
    return None


def free_ports(count: int) -> list[int]:
    found = []
    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                found.append(port)
        if len(found) == count:
            return found
    pytest.fail(f"no {count} free ports in {PORTS.start}-{PORTS.stop - 1}")


@dataclass
class StreamingPair:
    primary_port: int
    replica_port: int
    stop_replica: Callable[[], None] = lambda: None

    def url(self, port: int, database: str = "privnum") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def replica_url(self) -> str:
        return self.url(self.replica_port)

    def sql(self, port: int, statement: str) -> object:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres",
                             autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(statement).fetchone()
        return row[0] if row else None

    def caught_up(self, timeout: float = 30.0) -> None:
        """Wait until the replica has replayed everything the primary wrote so far."""
        target = self.sql(self.primary_port, "SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sql(self.replica_port,
                        f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"):
                return
            time.sleep(0.05)
        raise AssertionError(f"replica did not replay up to {target} within {timeout} s")

    def pause_replay(self) -> None:
        self.sql(self.replica_port, "SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.sql(self.replica_port, "SELECT pg_wal_replay_resume()")


def _runner(base: Path) -> list[str]:
    """Run as ``postgres`` when root (initdb refuses root), as ourselves otherwise."""
    if os.geteuid() != 0:
        return []
    if subprocess.run(["id", "postgres"], capture_output=True, check=False).returncode != 0:
        # as scripts/lib/bootstrap.sh does for its throwaway cluster
        subprocess.run(["useradd", "--system", "--home-dir", "/var/lib/postgresql", "postgres"],
                       check=True, timeout=STEP_TIMEOUT)
    shutil.chown(base, "postgres")
    return ["runuser", "-u", "postgres", "--"]


def _run(command: list[str], log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT,
                              timeout=STEP_TIMEOUT, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({done.returncode}):\n"
                             f"{log.read_text(errors='replace')[-2000:]}")


@contextmanager
def streaming_pair() -> Iterator[StreamingPair]:
    bindir = server_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not found: "
                    "install the postgresql package to run the read-replica test")
    base = Path(tempfile.mkdtemp(prefix="privnum-replica-"))
    base.chmod(0o755)
    as_owner = _runner(base)
    log = base / "setup.log"
    primary, replica = base / "primary", base / "replica"
    pair = StreamingPair(*free_ports(2))
    started: list[Path] = []

    def tool(name: str, *args: str) -> None:
        _run([*as_owner, str(bindir / name), *args], log)

    try:
        tool("initdb", "-D", str(primary), "-U", "postgres", "--auth=trust", "--no-sync")
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                       "fsync = off\nwal_level = replica\nmax_wal_senders = 4\n"
                       "shared_buffers = 16MB\nmax_connections = 40\n")
        tool("pg_ctl", "-D", str(primary), "-l", str(base / "primary.log"), "-w", "-t", "30",
             "-o", f"-p {pair.primary_port}", "start")
        started.append(primary)
        tool("pg_basebackup", "-h", "127.0.0.1", "-p", str(pair.primary_port), "-U",
             "postgres", "-D", str(replica), "-R", "-X", "stream", "-c", "fast")
        tool("pg_ctl", "-D", str(replica), "-l", str(base / "replica.log"), "-w", "-t", "30",
             "-o", f"-p {pair.replica_port}", "start")
        started.append(replica)
        pair.stop_replica = lambda: tool("pg_ctl", "-D", str(replica), "-m", "fast", "-w",
                                         "-t", "30", "stop")
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pair.primary_port}/postgres",
                             autocommit=True, connect_timeout=5) as conn:
            conn.execute("CREATE DATABASE privnum")
        pair.caught_up()
        yield pair
    finally:
        for data in reversed(started):  # one already stopped just says so
            subprocess.run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-m",
                            "immediate", "-w", "-t", "30", "stop"], capture_output=True,
                           timeout=STEP_TIMEOUT, check=False)
        shutil.rmtree(base, ignore_errors=True)
