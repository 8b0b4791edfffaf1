"""The privacy rule, end to end: a known buyer number goes in through the CLI, the FastAGI
call path (as a callback caller id, as a call's uniqueid and linkedid, and as a dial target),
the HTTP API (in a URL and as X-Request-Id, which the access log writes, and as the buyer of
an order the platform registers and then reveals), the CDR import and the exports;
afterwards it appears nowhere at rest or in output: not in the SQLite files, not in any Redis
value, not in the service's DEBUG log, not in CLI output, not in call-log rows or exports."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
import redis

from agi import channel_vars as cv
from binding_store.bindings import BindingStore
from binding_store.call_log import CallLogStore
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.outbox import Outbox
from tests.agi.asterisk_parse import answer_variables
from tests.agi.fake_asterisk import ANSWER_STEPS, FakeAsterisk, SendLine, env_bytes, load_env_blocks
from tests.api.conftest import make_env
from tests.binding_store.test_bindings_helpers import seed as seed_store
from tests.fixtures.ami.scenario import FORBIDDEN as SCENARIO_FORBIDDEN
from tests.fixtures.ami.scenario import NOW as SCENARIO_NOW
from tests.fixtures.ami.scenario import SHOP as SCENARIO_SHOP
from tests.fixtures.ami.scenario import cdr_events, seed

pytestmark = pytest.mark.redis

PRIVNUM = [sys.executable, "-m", "scripts.cli"]
MAIN, X, X_EXT = "13800000001", "17000000001", "17100000001"
BUYER = "13912345678"  # the secret
FORMS = [BUYER, "+86" + BUYER, "86" + BUYER, "139 1234 5678", "139-1234-5678"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def leaks(blob: bytes | str) -> list[str]:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    return [form for form in FORMS if form in text]


async def call(port: int, caller: str, uniqueid: str, dialled: str = X,
               extension: str = "") -> dict[str, str]:
    args = [f"link-{uniqueid}", *((extension, "1") if extension else ())]
    env = env_bytes(load_env_blocks()[0], script="route", args=args,
                    overrides={"agi_callerid": caller, "agi_extension": dialled,
                               "agi_uniqueid": uniqueid})
    peer = FakeAsterisk(env, [*ANSWER_STEPS, SendLine("HANGUP")])
    result = await peer.run("127.0.0.1", port)
    assert result.ok, result.mismatch
    # The MSet's arguments become the channel's lastdata (kept by a CDR if the caller hangs
    # up right then): the dial number has its own SET VARIABLE, no form of B is in the MSet.
    assert not leaks(result.commands[-1]), "buyer number inside EXEC MSet"
    return {cv.DIAL_NUMBER: "", **answer_variables(result.commands)}


def http_get(port: int, path: str, headers: dict[str, str], method: str = "GET",
             body: bytes | None = None) -> int:
    """The status of ``method path`` (an error status too) once the API listens."""
    for _ in range(100):  # a bound for the test, not a timing assertion
        try:
            with urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{port}{path}", headers=headers, method=method,
                    data=body), timeout=10) as done:
                return int(done.status)
        except urllib.error.HTTPError as refused:
            refused.close()
            return refused.code
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the HTTP API did not answer")


def http_post(port: int, path: str, body: bytes, headers: dict[str, str]
              ) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of POST ``path`` (the API is up: a GET answered)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as done:
            return int(done.status), dict(done.headers.items()), done.read()
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, dict(refused.headers.items()), refused.read()


def cdr_csv(path: Path) -> None:
    """What Asterisk's cdr_custom writes for a merchant call and a buyer callback."""
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    rows = [
        ["", MAIN, X, "privnum-inbound", f'"M" <{MAIN}>', "PJSIP/m-1", f"PJSIP/{BUYER}-2",
         "Dial", f"{day} 10:00:00", f"{day} 10:00:02", f"{day} 10:01:00", "60", "58",
         "ANSWERED", "DOCUMENTATION", "pbx-1.1", "pbx-1.1", "1", "", "shop1", "o1",
         "+86" + X, "bridged", "merchant", MAIN, "", ""],
        ["", BUYER, X, "privnum-inbound", f'"" <{BUYER}>', f"PJSIP/{BUYER}-3", "PJSIP/m-4",
         "Dial", f"{day} 11:00:00", f"{day} 11:00:01", f"{day} 11:00:31", "31", "30",
         "ANSWERED", "DOCUMENTATION", "pbx-2.1", "pbx-2.1", "2", "", "shop1", "o1",
         "+86" + X, "bridged", "callback", BUYER, "", ""],
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows(rows)
    assert len(cv.CDR_CSV_COLUMNS) == len(rows[0])


def test_a_buyer_number_never_leaves_memory(tmp_path: Path, redis_url: str,
                                             redis_prefix: str) -> None:
    port, api_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVNUM_")}
    env.update(PRIVNUM_DATA_DIR=str(tmp_path / "data"), PRIVNUM_AGI__PORT=str(port),
               PRIVNUM_API__PORT=str(api_port), PRIVNUM_REDIS__URL=redis_url,
               PRIVNUM_REDIS__PREFIX=redis_prefix, PRIVNUM_LOG_LEVEL="DEBUG",
               PRIVNUM_AGI__SYSTEM_NAME="pbx", PYTHONUNBUFFERED="1")
    outputs: list[str] = []

    def cli(*args: str) -> str:
        done = subprocess.run([*PRIVNUM, *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, f"privnum {' '.join(args)}: {done.stderr}"
        outputs.extend([done.stdout, done.stderr])
        return done.stdout

    cli("db", "upgrade")
    cli("keys", "generate")
    cli("shop", "enable", "shop1", "--main-account", "main1", "--phone", MAIN, "--agreement", "v1")
    (tmp_path / "pool.csv").write_text(f"number,region\n{X},bj\n{X_EXT},bj\n",
                                       encoding="utf-8")
    cli("pool", "import", str(tmp_path / "pool.csv"), "--quiet")
    cli("pool", "mode", X_EXT, "--extension", "2")
    cli("bind", "--shop", "shop1", "--order", "o1", "--caller", MAIN, "--buyer", BUYER,
        "--buyer-id", "buyer-77")
    # Extension mode: the same buyer on an extension of X_EXT (stored, indexed, called).
    cli("bind", "--shop", "shop1", "--order", "o2", "--caller", MAIN, "--buyer", BUYER,
        "--buyer-id", "buyer-77", "--mode", "extension")
    cli("index", "rebuild")
    platform = cli("tokens", "issue", "--platform").strip()
    token = cli("tokens", "issue", "--shop", "shop1", "--account", "main1").strip().splitlines()[-1]

    server = subprocess.Popen([*PRIVNUM, "serve"], env=env, stderr=subprocess.PIPE,
                              stdout=subprocess.DEVNULL)
    assert server.stderr is not None
    serving = threading.Event()
    log_lines: list[str] = []

    def drain(stream: IO[bytes]) -> None:
        # Read the log to its end in the background: a DEBUG log fills the pipe, and a
        # server blocked writing to it could not drain and exit.
        for line in stream:
            log_lines.append(line.decode())
            if b"serving FastAGI" in line:
                serving.set()

    reader = threading.Thread(target=drain, args=(server.stderr,), daemon=True)
    reader.start()
    try:
        assert serving.wait(timeout=60), "privnum serve did not start: " + "".join(log_lines)
        merchant = asyncio.run(call(port, MAIN, "pbx-1.1"))
        callback = asyncio.run(call(port, "+86 139-1234-5678", "pbx-2.1"))
        stranger = asyncio.run(call(port, "13700000009", "pbx-3.1"))
        # An id that is the buyer's number (an assigned ChannelId; the linkedid argument
        # holds it too): the call is routed, the id is neither stored nor logged.
        assigned = asyncio.run(call(port, BUYER, "86" + BUYER))
        assert assigned[cv.ACTION] == "bridge"
        # The dial target is the one place the plaintext must exist: Asterisk needs it.
        assert merchant[cv.DIAL_NUMBER] == BUYER and callback[cv.DIAL_NUMBER] == MAIN
        assert stranger[cv.ACTION] == "reject"
        asked = asyncio.run(call(port, MAIN, "pbx-5.1", X_EXT))
        by_ext = asyncio.run(call(port, MAIN, "pbx-5.1", X_EXT, "00"))
        direct = asyncio.run(call(port, BUYER, "pbx-6.1", X_EXT))
        assert asked[cv.ACTION] == cv.ACTION_COLLECT
        assert (by_ext[cv.DIAL_NUMBER], by_ext[cv.CDR_CALLERID]) == (BUYER, MAIN)
        assert (direct[cv.DIAL_NUMBER], direct[cv.CDR_CALLERID]) == (MAIN, "139****5678")
        # What Asterisk's CDRs record as the caller: A plain, anyone else masked.
        assert (merchant[cv.CDR_CALLERID], callback[cv.CDR_CALLERID],
                stranger[cv.CDR_CALLERID]) == (MAIN, "139****5678", "137****0009")
        for path in (f"/v1/numbers/{BUYER}/virtual", "/v1/numbers/+86%20139-1234-5678/virtual",
                     f"/v1/shops/shop1/calls?caller=86{BUYER}"):
            http_get(api_port, path, {"X-Request-Id": BUYER})
        # An order the platform registers, revealed on behalf of the shop's main account: the
        # plaintext goes back to the client only (the quota's order keys are in Redis).
        platform_auth = {"Authorization": f"Bearer {platform}",
                         "Content-Type": "application/json"}
        ordered = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        order = json.dumps({"shop_id": "shop1", "buyer_number": BUYER, "buyer_id": "buyer-77",
                            "ordered_at": ordered}).encode()
        assert http_get(api_port, "/v1/orders/o2", platform_auth, "PUT", order) == 201
        assert http_get(api_port, "/v1/orders/o2/reveal",
                        {**platform_auth, "X-Privnum-Account": "main1"}, "POST", b"{}") == 200
        # A reveal with an Idempotency-Key: the request (and the key, which holds the buyer
        # number here) and the kept response (plaintext when the policy allows it) are stored,
        # but neither readable.
        order3 = json.dumps({"shop_id": "shop1", "buyer_number": BUYER, "buyer_id": "buyer-77",
                             "ordered_at": ordered}).encode()
        assert http_get(api_port, "/v1/orders/o3", platform_auth, "PUT", order3) == 201
        keyed = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"k-{BUYER}"}
        first = http_post(api_port, "/v1/orders/o3/reveal", b"{}", keyed)
        again = http_post(api_port, "/v1/orders/o3/reveal", b"{}", keyed)
        assert first[0] == 200 and (again[0], again[2]) == (first[0], first[2]), first
        assert again[1].get("idempotent-replayed") == "true"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        reader.join(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        reader.join(timeout=30)
        server.stderr.close()
    outputs.extend(log_lines)

    cdr_csv(tmp_path / "cdr.csv")
    cli("cdr", "reconcile", "--file", str(tmp_path / "cdr.csv"), "--system-name", "pbx")
    cli("calls", "list", "--shop", "shop1")
    day = datetime.now(UTC).date().isoformat()
    for fmt in ("csv", "jsonl"):
        cli("cdr", "export", "--from", f"{day}T00:00", "--to", f"{day}T23:59:59",
            "--format", fmt, "--out", str(tmp_path / f"export.{fmt}"), "--quiet")
    cli("cdr", "verify")

    log = "".join(outputs)
    assert "DEBUG" in log and "call uniqueid=pbx-2.1" in log  # the logs were really captured
    assert "GET /v1/numbers/139****5678/virtual" in log  # the access log too
    assert "139****5678" in log
    assert not leaks(log), "plaintext buyer number in logs or CLI output"
    for path in sorted((tmp_path / "data").glob("privnum.db*")):
        assert not leaks(path.read_bytes()), f"plaintext buyer number in {path.name}"
    # The webhook outbox is among them: the calls' and the binding's events, buyers masked.
    with sqlite3.connect(tmp_path / "data" / "privnum.db") as conn:
        payloads = [row[0] for row in conn.execute("SELECT payload FROM webhook_events")]
    assert len(payloads) > 5 and any("139****5678" in p for p in payloads)
    assert not leaks("".join(payloads))
    exports = [tmp_path / "export.csv", tmp_path / "export.jsonl"]
    assert all(p.stat().st_size > 0 for p in exports)
    for path in exports:
        text = path.read_text(encoding="utf-8")
        assert "139****5678" in text
        assert not leaks(text), f"plaintext buyer number in {path.name}"
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"*{redis_prefix}*"))
        assert keys
        for key in keys:
            # DUMP: any type's value (the quota's per-order sets too)
            assert not leaks(key) and not leaks(client.dump(key) or b""), key
    finally:
        client.close()


async def test_no_console_page_or_download_holds_a_buyer_number(
        database: Database, tmp_path: Path) -> None:
    """Every page of the web console (call log, each call, operations, exports) and an export
    started there, file and manifest, as the platform sees them: masked numbers only."""
    env = await make_env(database, tmp_path)
    await seed(database)
    await CallLogStore(database).write_batch(cdr_events())
    env.clock.now = SCENARIO_NOW
    same_site = {"Origin": "http://privnum.test"}
    signed = await env.client.post("/console/sign-in", data={"token": env.tokens["admin"]},
                                   headers=same_site)
    assert signed.status_code == 303
    pages = [f"/console/shops/{SCENARIO_SHOP}/calls", "/console/operations", "/console/shops"]
    listing = (await env.client.get(pages[0])).text
    pages += sorted(set(re.findall(rf'"(/console/shops/{SCENARIO_SHOP}/calls/\d+)"', listing)))
    started = await env.client.post("/console/exports", headers=same_site, data={
        "since": "2026-11-28T00:00", "until": "2026-11-28T13:00", "fmt": "jsonl"})
    job = started.headers["location"]
    for _ in range(200):
        if 'id="export-state">done' in (await env.client.get(job)).text:
            break
        await asyncio.sleep(0.05)
    pages += [job, f"{job}/file", f"{job}/manifest", "/console/exports"]
    served = []
    for page in pages:
        response = await env.client.get(page)
        assert response.status_code == 200, page
        served.append(response.text)
    assert len(pages) > 8 and '"buyer_masked":"139****0001"' in served[-3]
    for text in served:
        for raw in SCENARIO_FORBIDDEN:
            assert raw not in text
    await env.client.aclose()


@pytest.mark.postgres
async def test_group_commit_writes_no_plaintext(pg_database: Database,
                                                cipher: BuyerCipher) -> None:
    """The PostgreSQL allocation function writes the binding, its audit row and its
    outbox event from what the store hands it: ciphertext, blind index, masked text."""
    await seed_store(pg_database, shops={"shop1": "enabled"},
               callers={("shop1", "+86" + MAIN): "approved"},
               pool=[(X, "", None)])
    store = BindingStore(pg_database, cipher, outbox=Outbox())
    got = await store.issue("shop1", "o1", "u", MAIN, "139 1234 5678", datetime.now(UTC),
                            actor="t")
    assert got.buyer_masked == "139****5678" and got.created and store.batches == 1
    async with pg_database.engine.connect() as conn:
        for table in ("bindings", "audit_events", "webhook_events"):
            dump = (await conn.exec_driver_sql(
                f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t")).scalar_one()
            assert "139****5678" in dump and not leaks(dump), table
