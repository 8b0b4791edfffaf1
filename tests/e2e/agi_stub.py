"""A tiny FastAGI responder for e2e smoke tests (stands in for the privnum daemon).

It reads the AGI environment block, sends the variables it was given exactly as privnum's
handler does (:func:`agi.answer.answer_commands`: a ``SET VARIABLE`` for the dial number, then
one ``EXEC MSet``), reads each of Asterisk's replies and closes (AGISTATUS=SUCCESS).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from agi.answer import answer_commands


@dataclass
class FastAgiStub:
    host: str
    port: int
    variables: Mapping[str, str] | None
    """What to MSet; None: accept and read the environment but never answer (a hung host)."""
    calls: list[dict[str, str]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stop: asyncio.Event | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            async with asyncio.timeout(None if self.variables is None else 10):
                env: dict[str, str] = {}
                while True:
                    line = (await reader.readline()).decode().rstrip("\n")
                    if not line:
                        break
                    key, _, value = line.partition(": ")
                    env[key] = value
                self.calls.append(env)
                if self.variables is None:  # a hung service: accepts, reads, never answers
                    await asyncio.Event().wait()
                    return
                for line in answer_commands(self.variables):
                    writer.write(f"{line}\n".encode())
                    await writer.drain()
                    self.replies.append((await reader.readline()).decode().strip())
        except (TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, self.host, self.port)
        ready.set()
        async with server:
            await self._stop.wait()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def __enter__(self) -> FastAgiStub:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            self._loop.run_until_complete(self._serve(ready))
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fastagi-stub", daemon=True)
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError(f"FastAGI stub did not bind {self.host}:{self.port}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=5)
