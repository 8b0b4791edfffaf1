"""`privnum serve` and `privnum agi` as real processes, set up through the CLI only."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from agi import channel_vars as cv
from tests.agi.asterisk_parse import answer_variables
from tests.agi.fake_asterisk import ANSWER_STEPS, FakeAsterisk, SendLine, env_bytes, load_env_blocks

PRIVNUM = [sys.executable, "-m", "scripts.cli"]
MAIN, BUYER, X = "13800000001", "13900000001", "17000000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("PRIVNUM_")}
    e.update(PRIVNUM_DATA_DIR=str(tmp_path), PRIVNUM_AGI__PORT=str(free_port()),
             PRIVNUM_API__ENABLED="false", PYTHONUNBUFFERED="1")
    return e


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*PRIVNUM, *args], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, f"privnum {' '.join(args)}: {done.stderr}"
    return done


@pytest.fixture
def provisioned(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    cli(env, "db", "upgrade")
    cli(env, "keys", "generate")
    cli(env, "shop", "enable", "shop1", "--main-account", "main1", "--phone", MAIN,
        "--agreement", "v1")
    pool = tmp_path / "pool.csv"
    pool.write_text(f"number,region\n{X},bj\n", encoding="utf-8")
    cli(env, "pool", "import", str(pool), "--quiet")
    out = cli(env, "bind", "--shop", "shop1", "--order", "o1", "--caller", MAIN,
              "--buyer", BUYER).stdout
    assert BUYER not in out and "139****0001" in out
    return env


def call_env(caller: str, uniqueid: str) -> bytes:
    return env_bytes(load_env_blocks()[0], script="route", args=["link"],
                     overrides={"agi_callerid": caller, "agi_extension": X,
                                "agi_uniqueid": uniqueid})


@pytest.fixture
def server(provisioned: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([*PRIVNUM, "serve"], env=provisioned, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "serving FastAGI" in line:
            break
    else:
        pytest.fail(f"privnum serve did not start (exit {proc.wait()})")
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    proc.stderr.close()


async def test_serve_routes_calls_and_stops_gracefully_on_sigterm(
    server: subprocess.Popen[str], provisioned: dict[str, str]
) -> None:
    port = int(provisioned["PRIVNUM_AGI__PORT"])
    calls = [
        FakeAsterisk(call_env(caller, f"u{i}"), [*ANSWER_STEPS, SendLine("HANGUP")])
        for i, caller in enumerate([MAIN, BUYER, "13700000009"])
    ]
    results = await asyncio.gather(*(c.run("127.0.0.1", port) for c in calls))
    decided = [{cv.DIAL_NUMBER: "", **answer_variables(r.commands)} for r in results]
    assert [(d[cv.ACTION], d[cv.DIAL_NUMBER]) for d in decided] == [
        ("bridge", BUYER), ("bridge", MAIN), ("reject", "")]
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    assert server.stderr is not None
    log = server.stderr.read()
    assert "agi server stopped" in log
    assert log.count("call uniqueid=") == 3
    assert BUYER not in log and "139****0001" in log


def test_agi_script_mode_routes_one_call_over_stdio(provisioned: dict[str, str]) -> None:
    done = subprocess.run([*PRIVNUM, "agi"], env=provisioned, input=call_env(MAIN, "s1")
                          + b"200 result=1\n200 result=0\n", capture_output=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    commands = done.stdout.decode().splitlines()
    assert len(commands) == 2  # the dial number's SET VARIABLE, then the MSet
    answer = answer_variables(commands)
    assert answer[cv.ACTION] == "bridge" and answer[cv.DIAL_NUMBER] == BUYER
    assert BUYER.encode() not in done.stderr


@pytest.mark.parametrize(
    ("setup", "message"),
    [("no-keys", "privnum keys generate"), ("no-schema", "privnum db upgrade")],
)
def test_serve_refuses_to_start_with_one_clear_line(
    env: dict[str, str], setup: str, message: str
) -> None:
    if setup == "no-schema":
        cli(env, "keys", "generate")
    done = subprocess.run([*PRIVNUM, "serve"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.redis
def test_serve_builds_the_redis_index_by_itself(provisioned: dict[str, str], redis_url: str,
                                                redis_prefix: str) -> None:
    """Nobody runs 'privnum index rebuild': the serving process finds the index without a
    watermark, rebuilds it in the background and says so in its log."""
    env = {**provisioned, "PRIVNUM_REDIS__URL": redis_url, "PRIVNUM_REDIS__PREFIX": redis_prefix,
           "PRIVNUM_LOG_LEVEL": "INFO"}
    proc = subprocess.Popen([*PRIVNUM, "serve"], env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        for line in proc.stderr:  # bounded by the suite's per-test timeout
            seen.append(line)
            if "Redis index rebuilt" in line:
                break
        else:
            pytest.fail(f"privnum serve exited ({proc.wait()}): {''.join(seen)[-2000:]}")
        client = redis.Redis.from_url(redis_url)
        try:
            base = f"{redis_prefix}:{{{redis_prefix}}}"  # the index's hash tag
            assert client.get(f"{base}:index:watermark") is not None
            assert list(client.scan_iter(match=f"{base}:ax:*"))
        finally:
            client.close()
        assert sum("no watermark" in line for line in seen) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
