"""`privnum serve --workers 2` as real processes: two call-path workers on one FastAGI port,
every call in flight answered when SIGTERM arrives, every process gone afterwards."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agi import channel_vars as cv
from agi.health import FastAgiProbe
from scripts.workers import worker_count
from tests.agi.asterisk_parse import answer_variables
from tests.agi.fake_asterisk import Expect, FakeAsterisk, SendLine
from tests.scripts.test_serve_process import (
    BUYER,
    MAIN,
    PRIVNUM,
    call_env,
    env,  # noqa: F401 - fixture
    provisioned,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.redis
WORKERS = 2


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone as far as serving goes.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


async def gone(pids: list[int], within: float = 10.0) -> bool:
    """Whether every process of ``pids`` has exited (or is a zombie) within ``within`` s."""
    for _ in range(int(within / 0.05)):
        if not any(alive(p) for p in pids):
            return True
        await asyncio.sleep(0.05)
    return not any(alive(p) for p in pids)


@pytest.fixture
def with_redis(provisioned: dict[str, str], redis_url: str,  # noqa: F811 - fixture
               redis_prefix: str) -> dict[str, str]:
    return {**provisioned, "PRIVNUM_REDIS__URL": redis_url,
            "PRIVNUM_REDIS__PREFIX": redis_prefix}


def start(env: dict[str, str]) -> subprocess.Popen[str]:  # noqa: F811 - not the fixture
    proc = subprocess.Popen([*PRIVNUM, "serve", "--workers", str(WORKERS)], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    ready = 0
    for line in proc.stderr:
        ready += "serving calls" in line
        if ready == WORKERS:
            return proc
    pytest.fail(f"privnum serve --workers did not start (exit {proc.wait()})")


@pytest.fixture
def server(with_redis: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = start(with_redis)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    assert proc.stderr is not None
    proc.stderr.close()


async def test_sigterm_drains_calls_in_flight_on_every_worker_and_all_exit(
        server: subprocess.Popen[str], with_redis: dict[str, str]) -> None:
    port = int(with_redis["PRIVNUM_AGI__PORT"])
    workers = children(server.pid)
    assert len(workers) == WORKERS
    # Asterisk is slow to acknowledge the first command: the calls are in flight when the
    # signal arrives.
    steps = [Expect(r'SET VARIABLE "_PRIVNUM_DIAL_NUMBER" "[+0-9]+"', delay=1.5),
             Expect(r"EXEC MSet .*", ("200 result=0",)), SendLine("HANGUP")]
    calls = [FakeAsterisk(call_env(MAIN if i % 2 else BUYER, f"w{i}"), steps)
             for i in range(20)]
    running = asyncio.gather(*(c.run("127.0.0.1", port) for c in calls))
    await asyncio.sleep(0.7)
    server.send_signal(signal.SIGTERM)
    results = await running
    assert all(r.ok for r in results), [r.mismatch for r in results if not r.ok]
    answers = [answer_variables(r.commands) for r in results]
    assert [(a[cv.ACTION], a[cv.DIAL_NUMBER]) for a in answers] == [
        ("bridge", MAIN if i % 2 == 0 else BUYER) for i in range(20)]
    assert await asyncio.to_thread(server.wait, 60) == 0
    # The parent waited for (and reaped) every worker before it exited.
    assert not any(alive(p) for p in workers)
    assert server.stderr is not None
    log = server.stderr.read()
    assert log.count("agi server stopped") == WORKERS
    assert log.count("call uniqueid=") == 20  # one line per call
    assert BUYER not in log


async def test_the_workers_answer_the_fastagi_health_probe(
        server: subprocess.Popen[str], with_redis: dict[str, str]) -> None:
    port = int(with_redis["PRIVNUM_AGI__PORT"])
    # The kernel hands each connection to one worker: several probes reach both.
    checks = [await FastAgiProbe("127.0.0.1", port, workers=WORKERS).check()
              for _ in range(6)]
    assert all(c.ok for c in checks), [c.detail for c in checks]
    server.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(server.wait, 60) == 0
    assert server.stderr is not None
    stopped = re.findall(r"agi server stopped accepted=(\d+) completed=(\d+)",
                         server.stderr.read())
    assert len(stopped) == WORKERS  # the health script completes, on whichever worker
    assert sum(int(done) for _, done in stopped) == sum(int(n) for n, _ in stopped) == 6


def test_a_second_serve_cannot_join_the_same_port(server: subprocess.Popen[str],
                                                  with_redis: dict[str, str]) -> None:
    done = subprocess.run([*PRIVNUM, "serve", "--workers", "2"], env=with_redis,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "already served by another privnum" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_default_is_every_core_on_a_server_database_and_one_on_sqlite() -> None:
    cores = len(os.sched_getaffinity(0))
    assert worker_count(None, "postgresql+psycopg://h/db") == cores
    assert worker_count(None, "sqlite+aiosqlite:///x.db") == 1
    assert worker_count(3, "sqlite+aiosqlite:///x.db") == 3


async def test_workers_of_a_killed_serve_drain_and_exit(server: subprocess.Popen[str]) -> None:
    workers = children(server.pid)
    assert len(workers) == WORKERS
    server.kill()  # SIGKILL: the parent cannot stop its workers
    assert await asyncio.to_thread(server.wait, 60) == -signal.SIGKILL
    assert server.stderr is not None
    # The workers share the parent's stderr: it ends when the last of them has exited.
    log = await asyncio.wait_for(asyncio.to_thread(server.stderr.read), 60)
    # The kernel closes an exiting process's files a moment before it turns into a zombie:
    # the end of stderr can come first (seen: a worker still running 10 ms later).
    assert await gone(workers)
    assert log.count("is gone") == WORKERS
    assert log.count("agi server stopped") == WORKERS
    assert "Traceback" not in log
