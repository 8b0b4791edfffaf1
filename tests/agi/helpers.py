"""Shared pieces of the AGI socket tests: a server context and recording handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from agi.server import FastAgiServer, Handler
from agi.session import AgiSession
from tests.agi.fake_asterisk import env_bytes, load_env_blocks

LOGGER_NAME = "test.privnum.agi"
BLOCKS = load_env_blocks()
MERCHANT = dict(BLOCKS[0])["agi_callerid"]  # a caller number that must never be logged

Body = Callable[[AgiSession], Awaitable[None]]


@dataclass
class Recorder:
    """A handler that records what it saw and what the body raised (then re-raises)."""

    body: Body | None = None
    sessions: list[AgiSession] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    finished: int = 0

    async def __call__(self, session: AgiSession) -> None:
        self.sessions.append(session)
        try:
            if self.body is not None:
                await self.body(session)
        except BaseException as exc:
            self.errors.append(exc)
            raise
        self.finished += 1


async def route_dialogue(session: AgiSession) -> None:
    """What the real route handler will roughly do: a log line and one MSet."""
    await session.verbose(f"privnum route uniqueid={session.uniqueid}")
    await session.set_variables({"PRIVNUM_ACTION": "bridge", "PRIVNUM_LINKEDID": session.args[0]})


ROUTE_STEPS = (
    r'VERBOSE "privnum route uniqueid=.*" 1',
    r'EXEC MSet "PRIVNUM_ACTION=bridge,PRIVNUM_LINKEDID=.*"',
)


def call_env(index: int = 0, *, script: str = "route", args: tuple[str, ...] = ("L-1",)) -> bytes:
    return env_bytes(BLOCKS[index], script=script, args=args)


@contextlib.asynccontextmanager
async def serving(routes: Mapping[str, Handler], **options: float) -> AsyncIterator[FastAgiServer]:
    settings: dict[str, float] = {
        "env_timeout": 2.0,
        "command_timeout": 2.0,
        "call_timeout": 5.0,
        "env_max_bytes": 4096,
    }
    settings.update(options)
    server = FastAgiServer(
        routes,
        host="127.0.0.1",
        port=0,
        env_timeout=settings["env_timeout"],
        command_timeout=settings["command_timeout"],
        call_timeout=settings["call_timeout"],
        env_max_bytes=int(settings["env_max_bytes"]),
        logger=logging.getLogger(LOGGER_NAME),
    )
    await server.start()
    try:
        yield server
    finally:
        await server.shutdown(grace=2.0)


async def wait_for(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll until ``predicate()`` holds (state changes driven by the server task)."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110 - the state lives in another task, no event
            await asyncio.sleep(0.01)
