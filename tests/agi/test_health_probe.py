"""The FastAGI probe of /healthz and the console: a real AGI exchange with a worker."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

from agi.health import HEALTH_SCRIPT, FastAgiProbe, answer_health
from agi.server import FastAgiServer
from agi.session import AgiSession


async def _route(session: AgiSession) -> None:  # pragma: no cover - never called here
    raise AssertionError("the health probe must not reach the call path")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_serving_worker_answers_the_probe() -> None:
    async with FastAgiServer({"route": _route, HEALTH_SCRIPT: answer_health},
                             port=0) as server:
        status = await FastAgiProbe("127.0.0.1", server.port, workers=2).check()
        assert status.ok and not status.required
        assert status.detail == f"answered on 127.0.0.1:{server.port} (2 worker processes " \
            "share it)"
        assert server.stats.as_dict()["completed"] == 1


async def test_nothing_listening_is_down() -> None:
    port = _free_port()
    status = await FastAgiProbe("127.0.0.1", port).check()
    assert not status.ok and status.name == "fastagi"
    assert status.detail.startswith(f"127.0.0.1:{port}: ")


async def test_a_server_without_the_health_script_is_down() -> None:
    async with FastAgiServer({"route": _route}, port=0) as server:
        status = await FastAgiProbe("127.0.0.1", server.port).check()
    assert not status.ok
    assert status.detail.endswith("closed without running the health script")


async def _tcp(handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
               ) -> AsyncIterator[int]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield int(server.sockets[0].getsockname()[1])


async def test_another_service_or_a_stuck_worker_is_down() -> None:
    async def talker(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH\r\n")
        await writer.drain()
        writer.close()

    async def stuck(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, never answers, until the probe gives up
        writer.close()

    async for port in _tcp(talker):
        status = await FastAgiProbe("127.0.0.1", port).check()
        assert not status.ok and "not privnum's FastAGI" in status.detail
    async for port in _tcp(stuck):
        status = await FastAgiProbe("127.0.0.1", port, timeout=0.2).check()
        assert not status.ok and "no AGI answer within 0.2s" in status.detail
