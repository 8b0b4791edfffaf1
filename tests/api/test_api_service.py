"""Wiring: ``run_api`` serves real HTTP from settings and stops gracefully; ``privnum tokens``."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest

from agi.handlers import decision_observer
from api.metrics import Metrics
from binding_store import migrate
from routing.errors import StoreUnavailable
from routing.model import Action, RouteDecision
from routing.reasons import Reason
from scripts.front_doors import run_api
from scripts.http_service import bind
from tests.api.conftest import settings_for
from tests.scripts.cli_helpers import Cli, one_line_error


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.redis
async def test_run_api_serves_and_stops_gracefully(tmp_path: Path, redis_url: str,
                                                   redis_prefix: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'privnum.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    settings = settings_for(tmp_path, url)
    settings.api.port = _free_port()
    settings.redis.url = redis_url
    settings.redis.prefix = redis_prefix
    stop = asyncio.Event()
    task = asyncio.create_task(run_api(settings, stop))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.api.port}") as client:
        for _ in range(100):
            try:
                health = (await client.get("/healthz")).json()
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        assert health["status"] == "ok"
        assert {c["name"]: c["ok"] for c in health["checks"]} == {
            "database": True, "redis": True, "ami": True, "fastagi": True}
        r = await client.get("/v1/numbers/+8617000000001/virtual")
        assert r.status_code == 401
    stop.set()
    await asyncio.wait_for(task, timeout=15)
    with socket.socket() as probe:  # the port is free again
        probe.bind(("127.0.0.1", settings.api.port))


def test_busy_port_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StoreUnavailable, match=f"cannot listen on 127.0.0.1:{port}"):
            bind("127.0.0.1", port)


def test_tokens_cli_issue_list_revoke(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'privnum.db'}"
    migrate.upgrade(url)
    cli = Cli(tmp_path, url)
    secret = cli.ok("tokens", "issue", "--shop", "s1", "--account", "m1").strip()
    assert secret.startswith("pn_") and "\n" not in secret  # stdout holds only the secret
    token_id = secret.split("_")[1]
    listed = cli.ok("tokens", "list")
    assert token_id in listed and secret not in listed
    cli.ok("tokens", "revoke", token_id)
    assert "revoked" in cli.ok("tokens", "list")
    one_line_error(cli("tokens", "revoke", "nope"), "not found")
    one_line_error(cli("tokens", "issue", "--admin", "--shop", "s1"), "exactly one of --platform")
    one_line_error(cli("tokens", "issue", "--shop", "s1"), "needs --shop and --account")
    platform = cli.ok("tokens", "issue", "--platform").strip()
    assert platform.startswith("pn_")
    # an auditor's shops must exist; its grants are listed
    one_line_error(cli("tokens", "issue", "--auditor", "s1"), "shop s1 not found")
    cli.ok("shop", "enable", "s1", "--main-account", "m1", "--phone", "13800000001",
           "--agreement", "v1")
    auditor = cli.ok("tokens", "issue", "--auditor", "s1", "--label", "audit").strip()
    rows = json.loads(cli.ok("tokens", "list", "--json"))
    by_id = {r["id"]: r for r in rows}
    assert by_id[auditor.split("_")[1]]["kind"] == "auditor"
    assert by_id[auditor.split("_")[1]]["shops"] == "s1"
    assert by_id[platform.split("_")[1]]["kind"] == "platform"


def test_decision_observer_counts_calls_and_agi_latency() -> None:
    metrics = Metrics()
    observe = decision_observer(metrics)
    observe(RouteDecision(action=Action.BRIDGE, reason=Reason.BRIDGED), 0.004)
    observe(RouteDecision.reject(Reason.BINDING_EXPIRED, "+8617000000001"), 0.002)
    text = metrics.render().decode()
    assert 'privnum_calls_total{outcome="bridged"} 1.0' in text
    assert 'privnum_calls_total{outcome="binding_expired"} 1.0' in text
    assert "privnum_agi_latency_seconds_count 2.0" in text
