"""Webhook delivery end to end, with failures: a real ``privnum serve`` and a real receiver
process that answers 500, then stalls past the timeout, then is killed, while bindings are
issued, switched and released and calls are routed and their CDRs imported; privnum itself
is killed and started again once. Afterwards every event in the outbox has reached the
receiver with a 2xx at least once, copies of an event share its id and body, every request's
signature verifies, and each call's and each order's events arrived in the order written."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agi import channel_vars as cv
from routing.webhooks import verify
from tests.agi.asterisk_parse import answer_variables
from tests.agi.fake_asterisk import ANSWER_STEPS, FakeAsterisk, SendLine, env_bytes, load_env_blocks
from tests.scripts.webhook_receiver import read_log

pytestmark = pytest.mark.slow

PRIVNUM = [sys.executable, "-m", "scripts.cli"]
MAIN, CLERK, STRANGER = "13800000001", "13800000002", "13700000009"
BUYERS = ["13912345671", "13912345672", "13912345673"]
POOL = [f"1700000000{i}" for i in range(1, 7)]
SECRET = "test-secret-0123456789abcdef"
# 60 quick rungs (0.6 s each): the receiver is down far less than the ladder lasts.
LADDER = json.dumps([0.01] * 60)


def free_ports(count: int) -> list[int]:
    """Ports of our own range that nobody listens on now."""
    found: list[int] = []
    for port in range(17900, 18000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    pytest.skip("no free port in 17900-17999")


class Processes:
    """The receiver and privnum serve, killed and restarted at will; none outlives the test."""

    def __init__(self, env: dict[str, str], tmp: Path, receiver_port: int) -> None:
        self.env = env
        self.tmp = tmp
        self.receiver_port = receiver_port
        self.receiver: subprocess.Popen[str] | None = None
        self.server: subprocess.Popen[str] | None = None
        self.logs: list[Path] = []

    def mode(self, mode: str) -> None:
        (self.tmp / "mode").write_text(mode, encoding="utf-8")

    def start_receiver(self) -> None:
        self.receiver = subprocess.Popen(
            [sys.executable, "-m", "tests.scripts.webhook_receiver", str(self.receiver_port),
             str(self.tmp / "received.jsonl"), str(self.tmp / "mode")],
            stdout=subprocess.PIPE, text=True, env=self.env)
        assert self.receiver.stdout is not None
        with self.receiver.stdout:
            assert "receiver ready" in self.receiver.stdout.readline()

    def kill_receiver(self) -> None:
        assert self.receiver is not None
        self.receiver.kill()
        self.receiver.wait()

    def start_server(self) -> None:
        log = self.tmp / f"serve-{len(self.logs)}.log"
        self.logs.append(log)
        handle = log.open("w", encoding="utf-8")
        self.server = subprocess.Popen([*PRIVNUM, "serve"], env=self.env, stderr=handle,
                                       stdout=subprocess.DEVNULL, text=True)
        handle.close()
        deadline = time.monotonic() + 60
        while "serving FastAGI" not in log.read_text(encoding="utf-8"):
            assert self.server.poll() is None, log.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, "privnum serve did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in (self.server, self.receiver):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Processes, dict[str, str]]]:
    agi_port, receiver_port = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVNUM_")}
    env.update(PRIVNUM_DATA_DIR=str(tmp_path / "data"), PRIVNUM_AGI__PORT=str(agi_port),
               PRIVNUM_API__ENABLED="false", PRIVNUM_AGI__SYSTEM_NAME="pbx",
               PRIVNUM_WEBHOOKS__RETRY_MINUTES=LADDER, PRIVNUM_WEBHOOKS__TIMEOUT_SECONDS="1",
               PRIVNUM_WEBHOOKS__POLL_SECONDS="0.1", PYTHONUNBUFFERED="1")
    procs = Processes(env, tmp_path, receiver_port)
    try:
        yield procs, env
    finally:
        procs.stop()


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*PRIVNUM, *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, f"privnum {' '.join(args)}: {done.stderr}"
    return done.stdout


def bind(env: dict[str, str], order: str, buyer: str) -> tuple[str, str]:
    """(binding id, X national) of a new binding of MAIN for ``order``."""
    out = cli(env, "bind", "--shop", "shop1", "--order", order, "--caller", MAIN,
              "--buyer", buyer).split()
    x = out[out.index("dial") + 1]
    return out[out.index("binding") + 1], x.removeprefix("+86")


async def route(port: int, caller: str, x: str, uniqueid: str) -> str:
    env = env_bytes(load_env_blocks()[0], script="route", args=[uniqueid],
                    overrides={"agi_callerid": caller, "agi_extension": x,
                               "agi_uniqueid": uniqueid})
    result = await FakeAsterisk(env, [*ANSWER_STEPS, SendLine("HANGUP")]).run("127.0.0.1", port)
    assert result.ok, result.mismatch
    return answer_variables(result.commands)[cv.ACTION]


def cdr_rows(calls: list[tuple[str, str, str, str, str]]) -> list[list[str]]:
    """CDRs as Asterisk's cdr_custom writes them, for (uniqueid, caller, x, reason,
    direction) calls that just happened."""
    start = datetime.now(UTC) - timedelta(seconds=40)
    rows = []
    for i, (uid, caller, x, reason, direction) in enumerate(calls):
        t0 = start + timedelta(seconds=i)
        answered = reason == "bridged"
        fmt = "%Y-%m-%d %H:%M:%S"
        rows.append([
            "", caller if direction == "merchant" else caller[:3] + "****" + caller[-4:], x,
            "privnum-inbound", "", "PJSIP/a-1", "", "Dial" if answered else "Hangup",
            t0.strftime(fmt), (t0 + timedelta(seconds=2)).strftime(fmt) if answered else "",
            (t0 + timedelta(seconds=30)).strftime(fmt), "30", "28" if answered else "0",
            "ANSWERED" if answered else "NO ANSWER", "DOCUMENTATION", uid, uid, str(i + 1), "",
            "shop1" if direction else "", "", "+86" + x, reason, direction, caller])
    return rows


def wait_until_delivered(db: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            undispatched, = conn.execute(
                "SELECT count(*) FROM webhook_events WHERE dispatched_at IS NULL").fetchone()
            open_, = conn.execute(
                "SELECT count(*) FROM webhook_deliveries WHERE state != 'delivered'").fetchone()
        if undispatched == 0 and open_ == 0:
            return
        assert time.monotonic() < deadline, f"{undispatched} undispatched, {open_} not delivered"
        time.sleep(0.2)


def test_every_event_reaches_a_failing_receiver_across_a_restart(
    setup: tuple[Processes, dict[str, str]], tmp_path: Path
) -> None:
    procs, env = setup
    port = int(env["PRIVNUM_AGI__PORT"])
    cli(env, "db", "upgrade")
    cli(env, "keys", "generate")
    cli(env, "shop", "enable", "shop1", "--main-account", "boss", "--phone", MAIN,
        "--agreement", "v1")
    cli(env, "accounts", "add", "shop1", "clerk", "--phone", CLERK, "--reviewed")
    cli(env, "callers", "add", "shop1", CLERK)
    (tmp_path / "pool.csv").write_text(
        "number,region\n" + "".join(f"{x},bj\n" for x in POOL), encoding="utf-8")
    cli(env, "pool", "import", str(tmp_path / "pool.csv"), "--quiet")
    cli(env, "webhooks", "add", f"http://127.0.0.1:{procs.receiver_port}/hook",
        "--secret", SECRET, "--batch", "5")

    procs.mode("500")
    procs.start_receiver()
    procs.start_server()
    calls: list[tuple[str, str, str, str, str]] = []
    # The receiver answers 500: bindings and calls go on.
    b1, x1 = bind(env, "o1", BUYERS[0])
    b2, x2 = bind(env, "o2", BUYERS[1])
    assert asyncio.run(route(port, MAIN, x1, "pbx-1700000001.1")) == "bridge"
    calls.append(("pbx-1700000001.1", MAIN, x1, "bridged", "merchant"))
    assert asyncio.run(route(port, BUYERS[1], x2, "pbx-1700000001.2")) == "bridge"
    calls.append(("pbx-1700000001.2", BUYERS[1], x2, "bridged", "callback"))
    assert asyncio.run(route(port, STRANGER, x1, "pbx-1700000001.3")) == "reject"
    calls.append(("pbx-1700000001.3", STRANGER, x1, "caller_not_authorized", ""))
    time.sleep(2)
    # It stalls past the timeout: the caller switch and the release are not held up.
    procs.mode("stall")
    cli(env, "switch-caller", b1, "--caller", CLERK)
    cli(env, "release", b2)
    assert asyncio.run(route(port, MAIN, x1, "pbx-1700000002.1")) == "reject"
    calls.append(("pbx-1700000002.1", MAIN, x1, "caller_not_authorized", "merchant"))
    time.sleep(2.5)
    # Killed with requests in flight; then the CDRs of the calls so far come in.
    procs.kill_receiver()
    b3, x3 = bind(env, "o3", BUYERS[2])
    assert asyncio.run(route(port, MAIN, x3, "pbx-1700000003.1")) == "bridge"
    calls.append(("pbx-1700000003.1", MAIN, x3, "bridged", "merchant"))
    with (tmp_path / "cdr.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows(cdr_rows(calls))
    cli(env, "cdr", "reconcile", "--file", str(tmp_path / "cdr.csv"), "--system-name", "pbx")
    time.sleep(1)
    # privnum itself dies and comes back; the receiver is still away, then back.
    assert procs.server is not None
    procs.server.kill()
    procs.server.wait()
    procs.start_server()
    assert asyncio.run(route(port, CLERK, x1, "pbx-1700000004.1")) in ("bridge", "reject")
    cli(env, "release", b3)
    procs.mode("ok")
    procs.start_receiver()
    wait_until_delivered(tmp_path / "data" / "privnum.db", 90)
    procs.server.send_signal(signal.SIGTERM)
    assert procs.server.wait(timeout=30) == 0

    with sqlite3.connect(tmp_path / "data" / "privnum.db") as conn:
        outbox = {row[0]: (row[1], row[2], row[3]) for row in conn.execute(
            "SELECT event_id, type, stream, id FROM webhook_events")}
    received = read_log(tmp_path / "received.jsonl")
    modes = {str(r["mode"]) for r in received}
    assert {"500", "ok"} <= modes, modes  # the failures really happened
    copies: dict[str, list[dict[str, object]]] = defaultdict(list)
    acknowledged: dict[str, float] = {}
    for request in received:
        raw = request["raw"]
        assert isinstance(raw, bytes)
        headers = request["headers"]
        assert isinstance(headers, dict)
        sent = datetime.fromtimestamp(float(str(request["at"])), UTC)
        assert verify(SECRET, headers, raw, sent), "signature does not verify"
        assert not any(b in raw.decode() for b in BUYERS), "plaintext buyer number in an event"
        for event in json.loads(raw)["events"]:
            copies[event["id"]].append(event)
            if request["status"] == 200:
                acknowledged.setdefault(event["id"], float(str(request["at"])))
    kinds = {kind for kind, _, _ in outbox.values()}
    assert {"binding.created", "binding.switched", "binding.released", "call.started",
            "call.rejected", "call.answered", "call.ended", "cdr"} <= kinds, kinds
    missing = set(outbox) - set(acknowledged)
    assert not missing, f"{len(missing)} of {len(outbox)} events never acknowledged"
    assert set(copies) <= set(outbox)
    for event_id, seen in copies.items():
        assert all(copy == seen[0] for copy in seen), f"copies of {event_id} differ"
        assert seen[0]["type"] == outbox[event_id][0]
    by_stream: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for event_id, (_, stream, seq) in outbox.items():
        by_stream[stream].append((acknowledged[event_id], seq))
    for stream, arrivals in by_stream.items():
        order = [seq for _, seq in sorted(arrivals)]
        assert order == sorted(order), f"{stream}: delivered out of order {order}"
    logs = "".join(p.read_text(encoding="utf-8") for p in procs.logs)
    assert "no answer within 1 s" in logs and "ConnectError" in logs  # stalled, then gone
    assert "HTTP 500" in logs
    assert "Traceback" not in logs
    print(f"{len(outbox)} events, {len(received)} requests, "
          f"{sum(len(c) for c in copies.values())} event copies received")
    assert not any(b in logs for b in BUYERS)
