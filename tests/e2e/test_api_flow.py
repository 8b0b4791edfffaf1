"""The whole merchant flow over HTTP on the real Asterisk lab, with the real privnum daemon.

``privnum serve`` (FastAGI + HTTP API + AMI listener, exactly as deployed) runs in a thread on
a fresh SQLite store; the platform side is plain HTTP: enable the service → add a caller number
→ reveal an order (privacy number X and caller A) → the merchant's baresip phone dials X from A
→ FastAGI bridges to the buyer's phone → the call appears in the shop's call log over HTTP.
Then click-to-call: the API originates (AMI, Async) → A rings showing X and answers → the call
enters the inbound dialplan as A → X and is bridged to B (shown X), and logged like any other.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from binding_store import migrate
from binding_store.accounts import AccountRepository
from binding_store.crypto import KeyRing
from binding_store.db import Database
from binding_store.pool import PoolRepository
from binding_store.tokens import TokenStore
from scripts import asterisk_lab
from scripts.clock import utc_now
from scripts.front_doors import serve
from scripts.settings import Settings
from tests.e2e.baresip import BaresipUA
from tests.e2e.conftest import BUYER, MERCHANT, RunningLab
from tests.e2e.test_lab_smoke import with_one_retry
from tests.e2e.test_scenarios import hang_up

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

SHOP, MAIN, SUB = "lab-shop", "lab-main", "lab-sub"
SUB_PHONE = "13800000002"  # lab-merchant-2
X = "+8617000000001"
X_DIALLED = "17000000001"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    """``privnum serve`` with the API and AMI companions, in a thread with its own loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="privnum-serve", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.stop_event = asyncio.Event()
            await serve(self.settings, stop=self.stop_event)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # reported by the test, not swallowed
            self.error = exc
        finally:
            self.loop.close()

    def start(self, api: httpx.Client) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.error is not None:
                raise AssertionError(f"privnum serve failed: {self.error}")
            try:
                health = api.get("/healthz").json()
                if {c["name"]: c["ok"] for c in health["checks"]}.get("database"):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("privnum serve did not come up")

    def stop(self) -> None:
        if self.stop_event is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=30)


async def _prepare(settings: Settings) -> dict[str, str]:
    db = Database(settings.database_url)
    try:
        now = utc_now()
        await PoolRepository(db).import_csv(["number,region", f"{X},lab"], now=now)
        store = TokenStore(db)
        return {"main": (await store.issue(now=now, shop_id=SHOP, account_id=MAIN)).secret,
                "sub": (await store.issue(now=now, shop_id=SHOP, account_id=SUB)).secret,
                "platform": (await store.issue(now=now, admin=True)).secret}
    finally:
        await db.dispose()


async def _add_sub_account(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        await AccountRepository(db).add_sub_account(SHOP, SUB, actor=MAIN, now=utc_now(),
                                                    phone=SUB_PHONE, phone_reviewed=True)
    finally:
        await db.dispose()


@pytest.fixture
def daemon(asterisk_lab_running: RunningLab, tmp_path: Path
           ) -> Iterator[tuple[Daemon, httpx.Client, dict[str, str]]]:
    lab = asterisk_lab_running
    KeyRing.generate().save(tmp_path / "keys.json")
    (tmp_path / "risk.toml").write_text("[risk]\nplaintext_enabled = false\n", encoding="utf-8")
    port = _free_port()
    settings = Settings(
        data_dir=tmp_path,
        keys={"file": tmp_path / "keys.json"},
        risk_policy_file=tmp_path / "risk.toml",
        agi={"host": lab.agi[0][0], "port": lab.agi[0][1], "system_name": "pnlab"},
        ami={"enabled": True, "port": lab.ami_port, "username": asterisk_lab.LAB_AMI_USER,
             "secret": asterisk_lab.LAB_AMI_SECRET},
        api={"port": port},
        asterisk={"dial_template": "PJSIP/{number}", "system_name": "pnlab"},
    )
    migrate.upgrade(settings.database_url)
    tokens = asyncio.run(_prepare(settings))
    proc = Daemon(settings)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
        proc.start(api)
        try:
            yield proc, api, tokens
        finally:
            proc.stop()
    assert proc.error is None, proc.error


def _calls(api: httpx.Client, token: str, binding_ids: set[str], timeout: float = 20.0
           ) -> list[dict[str, Any]]:
    """The shop's call records for these bindings, once the CDRs have arrived over AMI."""
    deadline = time.monotonic() + timeout
    while True:
        r = api.get(f"/v1/shops/{SHOP}/calls", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        found = [c for c in r.json()["calls"] if c["binding_id"] in binding_ids]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_enable_callers_reveal_dial_and_call_log(
    daemon: tuple[Daemon, httpx.Client, dict[str, str]],
    asterisk_lab_running: RunningLab, phones: Callable[..., BaresipUA],
) -> None:
    _, api, tokens = daemon
    lab = asterisk_lab_running
    main = {"Authorization": f"Bearer {tokens['main']}"}

    r = api.post(f"/v1/shops/{SHOP}/service/enable", headers=main,
                 json={"agreement_version": "2023-05", "main_phone": MERCHANT})
    assert r.status_code == 200, r.text
    asyncio.run(_add_sub_account(daemon[0].settings))
    r = api.post(f"/v1/shops/{SHOP}/callers", headers=main,
                 json={"number": SUB_PHONE, "account_id": SUB})
    assert r.status_code == 201, r.text

    # The platform registers the order; the merchant's reveal names it only.
    ordered = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    r = api.put("/v1/orders/lab-order-1",
                headers={"Authorization": f"Bearer {tokens['platform']}"},
                json={"shop_id": SHOP, "buyer_number": BUYER, "buyer_id": "lab-buyer",
                      "ordered_at": ordered})
    assert r.status_code == 201, r.text
    r = api.post("/v1/orders/lab-order-1/reveal", headers=main, json={})
    assert r.status_code == 200, r.text
    reveal = r.json()
    assert reveal["decision"] == "privacy" and reveal["rule"] == "plaintext_disabled"
    assert reveal["virtual_number"] == X
    assert reveal["caller_number"] == "+86" + MERCHANT
    assert reveal["other_callers"] == ["+86" + SUB_PHONE]
    shipping = api.get(f"/v1/numbers/{X}/virtual", headers=main).json()
    assert shipping["virtual"] is True

    merchant = phones("merchant", MERCHANT)
    buyer = phones("buyer", BUYER, auto_answer=True)

    def call() -> dict[str, Any]:
        merchant.drain()
        buyer.drain()
        merchant.dial(X_DIALLED)
        seen = buyer.wait_for({"CALL_ESTABLISHED"}, timeout=15)
        merchant.wait_for({"CALL_ESTABLISHED"}, timeout=10)
        return seen

    seen = with_one_retry("api flow call", lab, [merchant, buyer], call)
    assert X_DIALLED in buyer.caller_id_seen(seen)[0]  # B sees X, never A
    hang_up(merchant, buyer)

    records = _calls(api, tokens["sub"], {reveal["binding_id"]})
    assert records, "the bridged call did not reach the call log"
    record = records[0]
    assert record["outcome"] == "answered"
    assert record["direction"] == "merchant"
    assert record["order_id"] == "lab-order-1"
    assert record["buyer_masked"] == "139****0001"
    export = api.get(f"/v1/shops/{SHOP}/calls/export", headers=main)
    assert export.status_code == 200 and "lab-order-1" in export.text
    assert BUYER not in export.text

    # Click-to-call: A rings first (auto-answers), then the dialplan bridges to B. Both phones
    # show X: A's is not shown its own number, B's is never shown A's.
    merchant.stop()
    auto_merchant = phones("merchant-auto", MERCHANT, auto_answer=True)
    buyer.drain()
    r = api.post(f"/v1/bindings/{reveal['binding_id']}/call", headers=main)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "ringing"
    a_seen = auto_merchant.wait_for({"CALL_ESTABLISHED"}, timeout=20)
    b_seen = buyer.wait_for({"CALL_ESTABLISHED"}, timeout=20)
    assert auto_merchant.caller_id_seen(a_seen) == (X_DIALLED, X_DIALLED)
    assert buyer.caller_id_seen(b_seen) == (X_DIALLED, X_DIALLED)
    assert MERCHANT not in json.dumps([b_seen, *buyer.events_seen()])
    hang_up(buyer, auto_merchant)
    deadline = time.monotonic() + 20
    while len(records := _calls(api, tokens["main"], {reveal["binding_id"]}, timeout=1)) < 2:
        assert time.monotonic() < deadline, "the click-to-call did not reach the call log"
        time.sleep(0.5)
    # routed as "A dials X": a merchant call from A, answered by B
    assert [(c["direction"], c["outcome"]) for c in records] == [("merchant", "answered")] * 2
    assert BUYER not in json.dumps(records)
