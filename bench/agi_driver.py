"""A lean FastAGI load driver that plays Asterisk's side of each call.

Per call, like res_agi: connect, send the environment block (``agi_arg_1`` = linkedid), read
the ``EXEC MSet`` command (after a bridge's ``SET VARIABLE``, answered ``200 result=1``), answer
``200 result=0``, send ``HANGUP``, wait for the server
to close. Written on ``asyncio.Protocol`` (not streams) so the driver spends as little CPU
per call as possible; it runs in its own process, apart from the server.

Per call it records the post-dial delay Asterisk would see (connect -> MSet received) and the
whole call (connect -> server closed), and checks the action in the MSet against the expected
one. A call without an MSet, or not closed within ``call_timeout``, is a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.agi.fake_asterisk import env_bytes, load_env_blocks

_ACTION = b"PRIVNUM_ACTION="


def mset_action(line: bytes) -> bytes:
    """The action an ``EXEC MSet`` line (or what a handler sent) sets; ``b""`` if none."""
    at = line.find(_ACTION)
    return line[at + len(_ACTION):].split(b",", 1)[0].strip(b'"\n') if at >= 0 else b""


def build_envs(calls: Sequence[tuple[str, str]], run_tag: str, start: int = 0) -> list[bytes]:
    """Environment blocks for (callerid, extension) pairs, each with a unique uniqueid."""
    template = load_env_blocks()[0]
    envs = []
    # Asterisk's shape (epoch seconds "." sequence), one "epoch" per run tag: an id of
    # another shape (a tag with a pid and a digit run) is refused by the server, which then
    # logs two warnings per call and makes a stand-in id - work Asterisk never causes.
    epoch = 1_000_000_000 + zlib.crc32(run_tag.encode()) % 1_000_000_000
    for i, (callerid, extension) in enumerate(calls, start=start):
        uniqueid = f"{epoch}.{i}"
        envs.append(env_bytes(template, script="route", args=[uniqueid], overrides={
            "agi_callerid": callerid, "agi_extension": extension, "agi_uniqueid": uniqueid}))
    return envs


@dataclass
class LoadResult:
    calls: int = 0
    completed: int = 0
    lost: int = 0
    wrong_action: int = 0
    seconds: float = 0.0
    driver_cpu_seconds: float = 0.0
    decision_s: list[float] = field(default_factory=list)
    total_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def calls_per_s(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class _Call(asyncio.Protocol):
    def __init__(self, env: bytes, done: asyncio.Future[tuple[float, float, bytes]],
                 started: float) -> None:
        self._env = env
        self._done = done
        self._started = started
        self._buf = b""
        self._decided = 0.0
        self._action = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._env)

    def data_received(self, data: bytes) -> None:
        if self._decided:
            return  # nothing more is expected; the server closes next
        self._buf += data
        while b"\n" in self._buf:
            line, _, self._buf = self._buf.partition(b"\n")
            if line.startswith(b"EXEC MSet"):
                self._decided = time.perf_counter()
                self._action = mset_action(line)
                assert self._transport is not None
                self._transport.write(b"200 result=0\nHANGUP\n")
                return
            assert self._transport is not None
            self._transport.write(_reply_to(line))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._done.set_result((self._decided, time.perf_counter(), self._action))


def _reply_to(line: bytes) -> bytes:
    """Asterisk's answer to a command before the MSet: ``SET VARIABLE`` (a bridge's dial
    number) succeeds, anything else is not a command privnum sends."""
    if line.startswith(b"SET VARIABLE "):
        return b"200 result=1\n"
    return b"510 Invalid or unknown command\n"


async def one_call(host: str, port: int, env: bytes, limit: float
                   ) -> tuple[float, float, float, bytes]:
    """(started, decided, closed, action); decided is 0.0 when no MSet arrived."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[float, float, bytes]] = loop.create_future()
    started = time.perf_counter()
    transport, _ = await loop.create_connection(lambda: _Call(env, done, started), host, port)
    try:
        async with asyncio.timeout(limit):
            decided, closed, action = await done
    finally:
        transport.abort() if not done.done() else transport.close()
    return started, decided, closed, action


async def run_load(host: str, port: int, envs: Sequence[bytes],
                   expected: Sequence[str | None], concurrency: int,
                   call_timeout: float = 10.0, max_seconds: float | None = None) -> LoadResult:
    """Place ``len(envs)`` calls, at most ``concurrency`` at a time; with ``max_seconds``,
    stop starting new calls after that long (``calls`` then counts the calls started)."""
    result = LoadResult(calls=0)
    next_index = 0
    want = [e.encode() if e else None for e in expected]
    deadline = time.perf_counter() + max_seconds if max_seconds else float("inf")

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(envs) and time.perf_counter() < deadline:
            result.calls += 1
            i = next_index
            next_index += 1
            try:
                started, decided, closed, action = await one_call(host, port, envs[i],
                                                                  call_timeout)
            except TimeoutError:
                result.lost += 1
                result.error("timeout")
                continue
            except OSError as exc:
                result.lost += 1
                result.error(type(exc).__name__)
                continue
            if not decided:
                result.lost += 1
                result.error("no_mset")
                continue
            if want[i] is not None and action != want[i]:
                result.wrong_action += 1
            result.completed += 1
            result.decision_s.append(decided - started)
            result.total_s.append(closed - started)

    cpu = time.process_time()
    began = time.perf_counter()
    tasks = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(envs)))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
    result.seconds = time.perf_counter() - began
    result.driver_cpu_seconds = time.process_time() - cpu
    return result


async def script_call(argv: Sequence[str], env_vars: dict[str, str], agi_env: bytes,
                      limit: float = 30.0) -> tuple[float, float, float, bytes]:
    """One call in AGI-script mode: spawn, feed the environment on stdin, answer the MSet,
    close stdin (the hangup), wait for the process to exit."""
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=env_vars)
    assert proc.stdin is not None and proc.stdout is not None
    decided, action = 0.0, b""
    try:
        async with asyncio.timeout(limit):
            proc.stdin.write(agi_env)
            await proc.stdin.drain()
            while True:
                line = await proc.stdout.readline()
                if not line:
                    break
                if line.startswith(b"EXEC MSet"):
                    decided = time.perf_counter()
                    action = mset_action(line)
                    proc.stdin.write(b"200 result=0\n")
                    await proc.stdin.drain()
                    proc.stdin.close()
                    break
                proc.stdin.write(_reply_to(line))
            await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return started, decided, time.perf_counter(), action


async def run_script_load(argv: Sequence[str], env_vars: dict[str, str], envs: Sequence[bytes],
                          expected: Sequence[str | None], concurrency: int) -> LoadResult:
    result = LoadResult(calls=len(envs))
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(envs):
            i = next_index
            next_index += 1
            try:
                started, decided, closed, action = await script_call(argv, env_vars, envs[i])
            except (TimeoutError, OSError) as exc:
                result.lost += 1
                result.error(type(exc).__name__)
                continue
            if not decided:
                result.lost += 1
                result.error("no_mset")
                continue
            exp = expected[i]
            if exp is not None and action != exp.encode():
                result.wrong_action += 1
            result.completed += 1
            result.decision_s.append(decided - started)
            result.total_s.append(closed - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(envs)))))
    result.seconds = time.perf_counter() - began
    return result
