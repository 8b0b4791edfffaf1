"""One AGI conversation over a pair of byte streams (a FastAGI socket or a script's stdin/stdout).

The same :class:`AgiSession` serves both modes, so a handler never knows which one it runs in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from agi.deadline import Deadline
from agi.errors import AgiCommandError, AgiError, AgiHangup, AgiProtocolError, AgiTimeout
from agi.protocol import (
    AgiEnvironment,
    AgiReply,
    ReplyAssembler,
    build_environment,
    command_label,
    encode_command,
    format_get_variable,
    format_mset,
    format_verbose,
    is_hangup_line,
    parse_env_line,
)

# Longest single line accepted from Asterisk (a GET VARIABLE value, a usage line ...).
STREAM_LIMIT = 64 * 1024


class LineWriter(Protocol):
    """What a session writes to: ``asyncio.StreamWriter`` satisfies it."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


async def _readline(reader: asyncio.StreamReader) -> str | None:
    """One line without its terminator; None at EOF (a partial last line counts as EOF)."""
    try:
        raw = await reader.readline()
    except ValueError as exc:  # LimitOverrunError wrapped by readline: line too long
        raise AgiProtocolError("line from Asterisk too long") from exc
    except (ConnectionError, OSError) as exc:
        raise AgiHangup("connection lost") from exc
    if not raw.endswith(b"\n"):
        return None
    return raw[:-1].decode("utf-8", errors="replace")


def bounded(deadline: Deadline | None, seconds: float) -> AbstractAsyncContextManager[Any]:
    """A step limited to ``seconds``: on the call's deadline when it has one (FastAGI, where a
    sweeper enforces it), else on a timer of its own (AGI-script mode)."""
    return deadline.limit(seconds) if deadline is not None else asyncio.timeout(seconds)


async def read_environment(
    reader: asyncio.StreamReader, *, max_bytes: int, env_timeout: float,
    deadline: Deadline | None = None,
) -> AgiEnvironment | None:
    """Read one environment block. None if the peer closed before sending anything at all.

    Raises AgiProtocolError (malformed, oversized, EOF inside the block) or AgiTimeout.
    """
    pairs: list[tuple[str, str]] = []
    total = 0
    try:
        async with bounded(deadline, env_timeout):
            while True:
                try:
                    raw = await reader.readline()
                except ValueError as exc:
                    raise AgiProtocolError("AGI environment line too long") from exc
                except (ConnectionError, OSError) as exc:
                    raise AgiProtocolError("connection lost inside AGI environment") from exc
                total += len(raw)
                if total > max_bytes:
                    raise AgiProtocolError(f"AGI environment larger than {max_bytes} bytes")
                if not raw.endswith(b"\n"):
                    if total == 0:
                        return None
                    raise AgiProtocolError("connection closed inside AGI environment")
                try:
                    line = raw[:-1].decode("utf-8")
                except UnicodeDecodeError:
                    # Caller names in another charset still deserve a call; garbage fails below.
                    line = raw[:-1].decode("utf-8", errors="replace")
                if line in ("", "\r"):
                    break
                pairs.append(parse_env_line(line))
    except TimeoutError as exc:
        raise AgiTimeout(f"no complete AGI environment within {env_timeout:g}s") from exc
    if not pairs:
        raise AgiProtocolError("empty AGI environment")
    return build_environment(pairs)


class AgiSession:
    """Commands and replies of one call. Commands are serialised; each has a timeout.

    ``hungup`` turns True when Asterisk reports the hangup (``HANGUP`` line, ``511``, EOF or, in
    script mode, SIGHUP); from then on :meth:`command` raises :class:`AgiHangup` without sending.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: LineWriter,
        environment: AgiEnvironment,
        *,
        command_timeout: float,
        deadline: Deadline | None = None,
    ) -> None:
        self._reader = reader
        self._deadline = deadline
        self._writer = writer
        self._environment = environment
        self._command_timeout = command_timeout
        self._lock = asyncio.Lock()
        self._hungup = False
        self._broken: AgiError | None = None
        self.commands_sent = 0

    # -- the call --------------------------------------------------------------------------

    @property
    def environment(self) -> AgiEnvironment:
        return self._environment

    @property
    def env(self) -> Mapping[str, str]:
        return self._environment.env

    @property
    def args(self) -> tuple[str, ...]:
        return self._environment.args

    @property
    def script(self) -> str:
        return self._environment.script

    @property
    def uniqueid(self) -> str:
        return self._environment.uniqueid

    @property
    def hungup(self) -> bool:
        return self._hungup

    def limit(self, seconds: float) -> AbstractAsyncContextManager[Any]:
        """A step of this call that must end within ``seconds`` (``TimeoutError`` if not)."""
        return bounded(self._deadline, seconds)

    def mark_hangup(self) -> None:
        """Record a hangup learnt out of band (SIGHUP in script mode)."""
        self._hungup = True

    # -- commands --------------------------------------------------------------------------

    async def command(self, line: str, *, timeout_s: float | None = None) -> AgiReply:
        """Send one raw command line and return its reply (``200``).

        Raises AgiHangup (hangup seen, 511, EOF), AgiCommandError (510/520), AgiTimeout,
        AgiProtocolError (garbage from the peer), ValueError (a line that is not one command).
        """
        data = encode_command(line)
        label = command_label(line)
        limit = self._command_timeout if timeout_s is None else timeout_s
        async with self._lock:
            if self._broken is not None:
                raise type(self._broken)(f"{label}: session unusable after an earlier fault")
            if self._hungup:
                raise AgiHangup(f"{label}: channel already hung up")
            try:
                async with bounded(self._deadline, limit):
                    reply, hangup_seen = await self._exchange(data)
            except TimeoutError as exc:
                self._broken = AgiTimeout("timeout")
                raise AgiTimeout(f"{label}: no reply within {limit:g}s") from exc
            except AgiHangup:
                self._hungup = True
                raise
            except AgiProtocolError as exc:
                self._broken = exc
                raise
            self.commands_sent += 1
        if reply.code == 511:
            self._hungup = True
            raise AgiHangup(f"{label}: 511 dead channel", reply)
        if hangup_seen:
            raise AgiHangup(f"{label}: channel hung up", reply)
        if reply.code in (510, 520):
            raise AgiCommandError(f"{label}: {reply.code} {reply.text[4:]}", reply)
        return reply

    async def _exchange(self, data: bytes) -> tuple[AgiReply, bool]:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise AgiHangup("connection lost while sending") from exc
        assembler = ReplyAssembler()
        hangup_seen = False
        while True:
            line = await _readline(self._reader)
            if line is None:
                raise AgiHangup("Asterisk closed the connection")
            if not assembler.in_progress and is_hangup_line(line):
                # Unprompted notification, not our reply: remember it and keep reading.
                hangup_seen = self._hungup = True
                continue
            reply = assembler.feed(line)
            if reply is not None:
                return reply, hangup_seen

    async def set_variables(self, variables: Mapping[str, str]) -> AgiReply:
        """Set all ``variables`` with ONE ``EXEC MSet`` (values escaped for Asterisk)."""
        return await self.command(format_mset(variables))

    async def verbose(self, message: str, level: int = 1) -> AgiReply:
        """Write ``message`` to the Asterisk console/log (never pass plaintext numbers)."""
        return await self.command(format_verbose(message, level))

    async def get_variable(self, name: str) -> str | None:
        """Value of a channel variable, or None when it is not set."""
        reply = await self.command(format_get_variable(name))
        return reply.data if reply.result == "1" else None
