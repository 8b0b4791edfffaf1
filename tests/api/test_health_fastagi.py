"""/healthz and the operations page report the FastAGI workers from a real AGI exchange; a
FastAGI down degrades the status, it does not fail the HTTP API's health."""

from __future__ import annotations

import socket

from agi.health import HEALTH_SCRIPT, FastAgiProbe, answer_health
from agi.server import FastAgiServer
from agi.session import AgiSession
from tests.api.conftest import Env
from tests.api.test_console import sign_in


async def _route(session: AgiSession) -> None:  # pragma: no cover - never called here
    raise AssertionError("the health probe must not reach the call path")


def _with_fastagi(env: Env, port: int) -> None:
    others = [p for p in env.services.health if p.name != "fastagi"]
    env.services.health = (*others, FastAgiProbe("127.0.0.1", port))


async def test_fastagi_up_is_ok_and_down_is_degraded_not_503(env: Env) -> None:
    async with FastAgiServer({"route": _route, HEALTH_SCRIPT: answer_health},
                             port=0) as server:
        _with_fastagi(env, server.port)
        up = await env.client.get("/healthz")
        assert up.status_code == 200 and up.json()["status"] == "ok", up.text
        checks = {c["name"]: c for c in up.json()["checks"]}
        assert checks["fastagi"]["ok"] and not checks["fastagi"]["required"]
        await sign_in(env, "admin")
        page = (await env.client.get("/console/operations")).text
        assert f"<strong>fastagi</strong>: <span class=\"ok\">ok</span> — answered on " \
            f"127.0.0.1:{server.port}" in page
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        _with_fastagi(env, s.getsockname()[1])
    down = await env.client.get("/healthz")
    assert down.status_code == 200 and down.json()["status"] == "degraded"
    assert {c["name"]: c["ok"] for c in down.json()["checks"]}["fastagi"] is False
    page = (await env.client.get("/console/operations")).text
    assert '<strong>fastagi</strong>: <span class="error">down</span>' in page
