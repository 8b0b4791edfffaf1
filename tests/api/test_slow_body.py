"""A request body that never arrives (slowloris: headers sent, then a trickle or nothing) is
answered 408 and the connection closed within ``api.body_timeout_seconds``: raw sockets
against the real app server (uvicorn, as ``privnum serve`` runs it)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from binding_store import migrate
from scripts.api_service import run_api
from tests.api.conftest import settings_for

HEAD = ("POST /v1/shops/shop-1/callers HTTP/1.1\r\nHost: privnum\r\n"
        "Authorization: Bearer pn_x_y\r\nContent-Type: application/json\r\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def api_port(tmp_path: Path) -> AsyncIterator[int]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'privnum.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    settings = settings_for(tmp_path, url)
    settings.api.port = _free_port()
    settings.api.body_timeout_seconds = 0.5
    stop = asyncio.Event()
    task = asyncio.create_task(run_api(settings, stop))
    async with asyncio.timeout(15):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", settings.api.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            break
    yield settings.api.port
    stop.set()
    await asyncio.wait_for(task, 15)


async def _exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` and never the rest; return everything the server sends until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(20):  # a bound for the test, not a timing assertion
            return await reader.read()  # to EOF: the server closed the connection
    finally:
        writer.close()


@pytest.mark.parametrize("sent", [
    HEAD + "Content-Length: 200\r\n\r\n",  # headers, then nothing
    HEAD + 'Content-Length: 200\r\n\r\n{"number": "138',  # a part, then nothing
    HEAD + 'Transfer-Encoding: chunked\r\n\r\n5\r\n{"num\r\n',  # a chunk, never the last
], ids=["nothing", "part", "chunked"])
async def test_a_body_that_never_arrives_is_answered_408_and_closed(api_port: int,
                                                                    sent: str) -> None:
    reply = await _exchange(api_port, sent.encode())
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]
    assert b"request_timeout" in reply and b"connection: close" in reply.lower()


async def test_a_complete_body_is_not_affected(api_port: int) -> None:
    body = b'{"number": "13800000001"}'
    reply = await _exchange(api_port, (HEAD + f"Content-Length: {len(body)}\r\n"
                                       "Connection: close\r\n\r\n").encode() + body)
    assert reply.startswith(b"HTTP/1.1 401 "), reply[:200]  # read in full, then judged
