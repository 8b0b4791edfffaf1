"""A scripted fake Asterisk for AGI tests and load drivers (plain asyncio, no pytest needed).

It plays the Asterisk side of one call: sends an environment block (built from the environments
a real Asterisk 22 sent, ``tests/fixtures/agi/fastagi-env.txt``), then follows a script of steps:
expect a command (regex) and answer it, inject an unprompted ``HANGUP``, pause, send raw bytes,
half-close (EOF) or close. It then waits for the server to close and reports what happened.

    peer = FakeAsterisk(env_bytes(load_env_blocks()[0], args=["L1"]), [
        Expect(r'EXEC MSet ".*"', ("200 result=0",)),
    ])
    result = await peer.run("127.0.0.1", port)
    assert result.ok and result.server_closed
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "agi" / "fastagi-env.txt"

EnvBlock = list[tuple[str, str]]


def load_env_blocks(path: Path = FIXTURE) -> list[EnvBlock]:
    """The blank-line separated ``agi_key: value`` blocks of a recorded environment file."""
    blocks: list[EnvBlock] = []
    current: EnvBlock = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current = []
            continue
        key, _, value = line.partition(":")
        current.append((key, value[1:] if value.startswith(" ") else value))
    if current:
        blocks.append(current)
    return blocks


def env_bytes(
    block: Iterable[tuple[str, str]],
    *,
    script: str | None = None,
    args: Sequence[str] = (),
    overrides: Mapping[str, str] | None = None,
) -> bytes:
    """Serialise a block the way res_agi does; optionally re-target the script and add args."""
    pairs = dict(block)
    if script is not None:
        pairs["agi_network_script"] = script
        host = pairs.get("agi_request", "agi://127.0.0.1:4573/").split("/")[2]
        pairs["agi_request"] = f"agi://{host}/{script}"
    pairs.update(overrides or {})
    for i, arg in enumerate(args, start=1):
        pairs[f"agi_arg_{i}"] = arg
    return "".join(f"{k}: {v}\n" for k, v in pairs.items()).encode() + b"\n"


# --------------------------------------------------------------------------- script steps


@dataclass(frozen=True)
class Expect:
    """Wait for a command matching ``pattern`` (full match), then send ``reply`` lines.

    ``hangup_before_reply`` sends ``HANGUP`` first (a hangup racing the reply). ``delay`` waits
    before replying (slow Asterisk). ``optional``: EOF instead of this command is not a mismatch.
    """

    pattern: str
    reply: tuple[str, ...] = ("200 result=1",)
    hangup_before_reply: bool = False
    delay: float = 0.0
    optional: bool = False


@dataclass(frozen=True)
class SendLine:
    """An unprompted line, e.g. ``SendLine("HANGUP")``."""

    line: str


@dataclass(frozen=True)
class SendRaw:
    data: bytes


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class HalfClose:
    """EOF towards the server; keep reading until it closes."""


@dataclass(frozen=True)
class Close:
    """Close the connection entirely, now."""


Step = Expect | SendLine | SendRaw | Pause | HalfClose | Close


@dataclass
class PeerResult:
    commands: list[str] = field(default_factory=list)  # every command line received
    mismatch: str | None = None  # first deviation from the script
    server_closed: bool = False  # the server closed the connection (EOF or reset)
    extra: list[str] = field(default_factory=list)  # lines received after the script ended
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.mismatch is None


class FakeAsterisk:
    """One scripted call. ``run()`` connects over TCP; ``play()`` works on any stream pair."""

    def __init__(
        self,
        env: bytes | None,
        steps: Sequence[Step] = (),
        *,
        read_timeout: float = 5.0,
        close_timeout: float = 5.0,
        env_chunk: int | None = None,
    ) -> None:
        self.env = env
        self.steps = tuple(steps)
        self.read_timeout = read_timeout
        self.close_timeout = close_timeout
        self.env_chunk = env_chunk

    async def run(self, host: str, port: int) -> PeerResult:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            return await self.play(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def play(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> PeerResult:
        result = PeerResult()
        started = time.monotonic()
        closed_by_us = False
        try:
            if self.env is not None:
                await self._send_env(writer)
            for step in self.steps:
                if isinstance(step, Expect):
                    if not await self._expect(step, reader, writer, result):
                        break
                elif isinstance(step, SendLine):
                    await _send(writer, step.line.encode() + b"\n")
                elif isinstance(step, SendRaw):
                    await _send(writer, step.data)
                elif isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, HalfClose):
                    if writer.can_write_eof():
                        writer.write_eof()
                    else:
                        writer.close()
                elif isinstance(step, Close):
                    closed_by_us = True
                    writer.close()
                    break
            if not closed_by_us:
                await self._await_close(reader, result)
        except (ConnectionError, OSError):
            result.server_closed = True
        result.seconds = time.monotonic() - started
        return result

    async def _send_env(self, writer: asyncio.StreamWriter) -> None:
        assert self.env is not None
        if not self.env_chunk:
            await _send(writer, self.env)
            return
        for i in range(0, len(self.env), self.env_chunk):
            await _send(writer, self.env[i : i + self.env_chunk])
            await asyncio.sleep(0.01)

    async def _expect(
        self,
        step: Expect,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        result: PeerResult,
    ) -> bool:
        try:
            raw = await asyncio.wait_for(reader.readline(), self.read_timeout)
        except TimeoutError:
            result.mismatch = f"no command within {self.read_timeout}s (wanted {step.pattern!r})"
            return False
        if not raw.endswith(b"\n"):
            result.server_closed = True
            if not step.optional:
                result.mismatch = f"server closed instead of sending {step.pattern!r}"
            return False
        line = raw[:-1].decode("utf-8", errors="replace")
        result.commands.append(line)
        if re.fullmatch(step.pattern, line, re.DOTALL) is None:
            result.mismatch = f"command {line!r} does not match {step.pattern!r}"
            return False
        if step.delay:
            await asyncio.sleep(step.delay)
        out = b"HANGUP\n" if step.hangup_before_reply else b""
        out += b"".join(r.encode() + b"\n" for r in step.reply)
        await _send(writer, out)
        return True

    async def _await_close(self, reader: asyncio.StreamReader, result: PeerResult) -> None:
        try:
            async with asyncio.timeout(self.close_timeout):
                while True:
                    raw = await reader.readline()
                    if not raw:
                        result.server_closed = True
                        return
                    result.extra.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
        except TimeoutError:
            return


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


# What Asterisk receives as privnum's routing answer: the dial number's SET VARIABLE (bridges
# only), then one EXEC MSet. A reject's MSet is matched by the first step, the second is then
# skipped at EOF.
ANSWER_STEPS: tuple[Expect, ...] = (
    Expect(r'SET VARIABLE "_PRIVNUM_DIAL_NUMBER" "[+0-9]+"|EXEC MSet .*', ("200 result=1",)),
    Expect(r"EXEC MSet .*", ("200 result=0",), optional=True),
)
