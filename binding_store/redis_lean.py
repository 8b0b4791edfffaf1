"""A lean Redis connection for the call path's one command per call.

redis-py's asyncio client costs 0.1-0.3 ms of CPU per command (connection pool checkout,
retry and timeout wrappers, response callbacks), more than the rest of a call's decision. The
call path sends one script per call, so it gets one connection of its own: commands are
pipelined on it (those of one event-loop iteration written together, replies matched in
order), parsed by hiredis (the parser redis-py itself uses). Everything else in the index
keeps using redis-py.

Faults: a lost connection fails every command waiting on it with ``ConnectionError`` (the
index's edge turns it into ``StoreUnavailable``); the next command connects again, asking
``resolve`` for the address, so a server behind a failover mechanism can move. A command
abandoned by its caller (its deadline passed) still has its reply read and dropped, so
replies never go to the wrong caller.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlparse

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError


@dataclass(frozen=True)
class Address:
    host: str = "127.0.0.1"
    port: int = 6379
    path: str = ""  # a unix socket instead of host and port
    tls: bool = False
    username: str = ""
    password: str = ""
    db: int = 0


Resolver = Callable[[], Awaitable[Address]]


def address_of(url: str) -> Address:
    """``redis://``, ``rediss://`` or ``unix://`` URL (as redis-py reads them)."""
    parts = urlparse(url)
    username = unquote(parts.username or "")
    password = unquote(parts.password or "")
    if parts.scheme == "unix":
        db = _db_query(parts.query)
        return Address(path=parts.path, username=username, password=password, db=db)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r}")
    path = parts.path.strip("/")
    db = int(path) if path else _db_query(parts.query)
    return Address(host=parts.hostname or "127.0.0.1", port=parts.port or 6379,
                   tls=parts.scheme == "rediss", username=username, password=password, db=db)


def _db_query(query: str) -> int:
    for item in query.split("&"):
        key, _, value = item.partition("=")
        if key == "db" and value:
            return int(value)
    return 0


class _Pipe(asyncio.Protocol):
    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._transport: asyncio.Transport | None = None
        # Commands of this loop iteration, written together by one ``_flush``.
        self._outgoing: list[bytes] = []
        self.lost = False
        self.writes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                future = self._waiting.popleft()
                if future.done():
                    continue  # its caller gave up; the reply is dropped in order
                if isinstance(reply, hiredis.ReplyError):
                    future.set_exception(_reply_error(str(reply)))
                else:
                    future.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:
            self._fail(RedisConnectionError(f"unreadable reply from Redis: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError("connection to Redis lost"))

    def _fail(self, error: Exception) -> None:
        self.lost = True
        self._outgoing.clear()
        if self._transport is not None:
            self._transport.abort()
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        if self.lost or self._transport is None:
            raise RedisConnectionError("connection to Redis lost")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append(future)
        # Calls woken by the same loop iteration send their look-ups in one write (one
        # syscall, one wake-up of Redis) instead of one each. The write waits at most until
        # the end of this iteration.
        if not self._outgoing:
            loop.call_soon(self._flush)
        self._outgoing.append(payload)
        return future

    def _flush(self) -> None:
        if self.lost or self._transport is None or not self._outgoing:
            return  # lost: _fail has failed every waiting command already
        payload = b"".join(self._outgoing) if len(self._outgoing) > 1 else self._outgoing[0]
        self._outgoing.clear()
        self.writes += 1
        self._transport.write(payload)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _pack(*parts: str | int) -> bytes:
    """One command in RESP (hiredis' encoder; its type stubs take a tuple of any length)."""
    packed: bytes = hiredis.pack_command(cast(Any, parts))
    return packed


def _reply_error(text: str) -> ResponseError:
    return NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text)


class LeanRedis:
    """One pipelined connection; ``run_script`` is its one public command."""

    def __init__(self, resolve: Resolver, *, connect_timeout: float) -> None:
        self._resolve = resolve
        self._connect_timeout = connect_timeout
        self._pipe: _Pipe | None = None
        self._connecting: asyncio.Lock | None = None

    @classmethod
    def from_url(cls, url: str, *, connect_timeout: float) -> LeanRedis:
        address = address_of(url)

        async def resolve() -> Address:
            return address

        return cls(resolve, connect_timeout=connect_timeout)

    async def run_script(self, sha: str, script: str, keys: Sequence[str],
                         args: Sequence[str | int]) -> Any:
        """``EVALSHA`` (``EVAL`` once when Redis does not know the script yet)."""
        pipe = self._pipe
        if pipe is None or pipe.lost:
            pipe = await self._connected()  # the usual case needs no await: connected
        count = str(len(keys))
        try:
            return await pipe.send(_pack("EVALSHA", sha, count, *keys, *args))
        except NoScriptError:
            return await pipe.send(_pack("EVAL", script, count, *keys, *args))

    async def _connected(self) -> _Pipe:
        pipe = self._pipe
        if pipe is not None and not pipe.lost:
            return pipe  # the usual case: no await, no lock
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._pipe is None or self._pipe.lost:
                async with asyncio.timeout(self._connect_timeout):
                    self._pipe = await self._connect(await self._resolve())
            return self._pipe

    async def _connect(self, address: Address) -> _Pipe:
        loop = asyncio.get_running_loop()
        pipe = _Pipe()
        try:
            if address.path:
                await loop.create_unix_connection(lambda: pipe, address.path)
            else:
                context = ssl.create_default_context() if address.tls else None
                await loop.create_connection(lambda: pipe, address.host, address.port,
                                             ssl=context)
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc.strerror or exc}"
                                       ) from exc
        hello: list[asyncio.Future[Any]] = []
        if address.password:
            auth = (("AUTH", address.username, address.password) if address.username
                    else ("AUTH", address.password))
            hello.append(pipe.send(_pack(*auth)))
        if address.db:
            hello.append(pipe.send(_pack("SELECT", str(address.db))))
        try:
            await asyncio.gather(*hello)
        except BaseException:
            pipe.close()
            raise
        return pipe

    @property
    def writes(self) -> int:
        """Socket writes on the current connection (commands sent together count once)."""
        return self._pipe.writes if self._pipe is not None else 0

    async def close(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
