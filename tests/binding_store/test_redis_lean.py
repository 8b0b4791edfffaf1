"""The call path's lean Redis connection against a real Redis: pipelined replies reach their
own callers, an unknown script is loaded, a lost connection fails its commands and the next
command reconnects, an abandoned command never shifts the replies."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import socket
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from binding_store.redis_index import RedisIndex
from binding_store.redis_lean import Address, LeanRedis, address_of
from binding_store.redis_scripts import LOOKUP
from routing.errors import StoreUnavailable

pytestmark = pytest.mark.redis

ECHO = "return ARGV[1]"
SLOW = "local n = 0 for i = 1, 3000000 do n = n + 1 end return ARGV[1]"


def sha1(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()  # Redis's script id


@pytest.fixture
async def lean(redis_url: str) -> AsyncIterator[LeanRedis]:
    client = LeanRedis.from_url(redis_url, connect_timeout=2.0)
    yield client
    await client.close()


def test_urls_are_read_like_redis_py() -> None:
    assert address_of("redis://:pw@h:7000/4") == Address("h", 7000, password="pw", db=4)
    assert address_of("rediss://u:p@h/0").tls
    assert address_of("unix:///run/redis.sock?db=2") == Address(path="/run/redis.sock", db=2)
    with pytest.raises(ValueError, match="scheme"):
        address_of("http://h")


async def test_pipelined_replies_reach_their_own_callers(lean: LeanRedis) -> None:
    script = f"{ECHO} -- {secrets.token_hex(4)}"  # unknown to Redis: loaded on first use
    got = await asyncio.gather(*(lean.run_script(sha1(script), script, [], [str(i)])
                                 for i in range(300)))
    assert got == [str(i).encode() for i in range(300)]


async def test_commands_of_one_loop_iteration_go_out_in_one_write(lean: LeanRedis) -> None:
    await lean.run_script(sha1(ECHO), ECHO, [], ["connect"])
    before = lean.writes
    got = await asyncio.gather(*(lean.run_script(sha1(ECHO), ECHO, [], [str(i)])
                                 for i in range(50)))
    assert got == [str(i).encode() for i in range(50)]
    assert lean.writes - before == 1
    assert await lean.run_script(sha1(ECHO), ECHO, [], ["alone"]) == b"alone"
    assert lean.writes - before == 2


async def test_a_script_error_is_a_response_error_and_the_connection_goes_on(
        lean: LeanRedis) -> None:
    bad = "return redis.call('NOSUCHCOMMAND')"
    with pytest.raises(ResponseError):
        await lean.run_script(sha1(bad), bad, [], [])
    assert await lean.run_script(sha1(ECHO), ECHO, [], ["ok"]) == b"ok"


async def test_the_lookup_script_answers_nil_for_missing_keys(lean: LeanRedis) -> None:
    tag = f"{{lean-{secrets.token_hex(3)}}}"
    keys = [f"{tag}:ax", f"{tag}:bx", f"{tag}:wm", f"{tag}:pool"]
    got = await lean.run_script(sha1(LOOKUP), LOOKUP, keys, [tag, "+8617000000001"])
    assert got == [None, None, None, None, None, None, None, 0]


async def test_an_abandoned_command_does_not_shift_the_replies(lean: LeanRedis) -> None:
    slow = asyncio.create_task(lean.run_script(sha1(SLOW), SLOW, [], ["slow"]))
    await asyncio.sleep(0)  # written
    quick = asyncio.create_task(lean.run_script(sha1(ECHO), ECHO, [], ["quick"]))
    slow.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await slow
    assert await quick == b"quick"
    assert await lean.run_script(sha1(ECHO), ECHO, [], ["next"]) == b"next"


async def test_a_lost_connection_fails_its_commands_and_the_next_one_reconnects(
        redis_url: str) -> None:
    target = address_of(redis_url)
    cut = asyncio.Event()
    # While ``hold`` is set the relay keeps the client's commands from Redis, so a command
    # is certainly unanswered when the connection is cut (no race with a fast Redis).
    hold = asyncio.Event()
    held = asyncio.Event()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        relays.append(asyncio.current_task())  # type: ignore[arg-type]
        up_r, up_w = await asyncio.open_connection(target.host, target.port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                       holding: bool) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    if holding and hold.is_set():
                        held.set()
                        continue
                    dst.write(data)

        pumps = [asyncio.create_task(pump(reader, up_w, True)),
                 asyncio.create_task(pump(up_r, writer, False))]
        await cut.wait()
        for task in pumps:
            task.cancel()
        writer.transport.abort()
        up_w.close()

    relays: list[asyncio.Task[None]] = []
    proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]

    async def resolve() -> Address:
        return Address("127.0.0.1", port, db=target.db)

    lean = LeanRedis(resolve, connect_timeout=2.0)
    try:
        assert await lean.run_script(sha1(ECHO), ECHO, [], ["a"]) == b"a"
        hold.set()
        waiting = asyncio.create_task(lean.run_script(sha1(ECHO), ECHO, [], ["b"]))
        async with asyncio.timeout(5):
            await held.wait()  # the command left the client and will never be answered
        cut.set()
        with pytest.raises(RedisConnectionError):
            await waiting
        cut.clear()
        hold.clear()
        assert await lean.run_script(sha1(ECHO), ECHO, [], ["c"]) == b"c"
    finally:
        await lean.close()
        cut.set()  # the second relay ends too: nothing of it outlives the test
        async with asyncio.timeout(5):
            await asyncio.gather(*relays)
        proxy.close()
        await proxy.wait_closed()


async def test_the_call_paths_look_up_reports_a_redis_it_cannot_reach_as_unavailable() -> None:
    # The index's look-up without a timer of its own (bounded=False) uses the lean connection
    # directly: a refused connection is still StoreUnavailable, as every other index fault.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    index = RedisIndex.from_url(f"redis://127.0.0.1:{port}/0", prefix="t", timeout=1.0)
    try:
        for bounded in (False, True):
            with pytest.raises(StoreUnavailable, match="Redis unavailable"):
                await index.lookup("+8613800000001", "bidx", "+8617000000001",
                                   bounded=bounded)
    finally:
        await index.close()
