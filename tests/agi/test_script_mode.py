"""AGI-script mode: the same handlers over stdin/stdout pipes (in-process and as a real process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agi.errors import AgiCommandError, AgiHangup
from agi.script_mode import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, run_script_async
from agi.session import AgiSession
from tests.agi.fake_asterisk import Expect, FakeAsterisk, HalfClose, PeerResult, Step, env_bytes
from tests.agi.helpers import BLOCKS, LOGGER_NAME, MERCHANT, ROUTE_STEPS, Recorder, route_dialogue

pytestmark = pytest.mark.asyncio

REPO = Path(__file__).resolve().parents[2]


def script_env(index: int = 4, args: tuple[str, ...] = ("L-9",)) -> bytes:
    """An AGI-script environment: no agi_network*, agi_request is the script path."""
    block = [(k, v) for k, v in BLOCKS[index] if not k.startswith("agi_network")]
    return env_bytes(
        block, args=args, overrides={"agi_request": "/var/lib/asterisk/agi-bin/privnum-route"}
    )


@contextlib.asynccontextmanager
async def asterisk_pipes() -> AsyncIterator[
    tuple[asyncio.StreamReader, asyncio.StreamWriter, int, int]
]:
    """Two pipes: (peer reader, peer writer, script stdin fd, script stdout fd)."""
    loop = asyncio.get_running_loop()
    to_script_r, to_script_w = os.pipe()
    from_script_r, from_script_w = os.pipe()
    reader = asyncio.StreamReader()
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(from_script_r, "rb", buffering=0)
    )
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(to_script_w, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    try:
        yield reader, writer, to_script_r, from_script_w
    finally:
        writer.close()
        read_transport.close()
        for fd in (to_script_r, from_script_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        await asyncio.sleep(0)


async def run_both(
    handler: Recorder, env: bytes | None, steps: list[Step], **options: float
) -> tuple[int, PeerResult]:
    async with asterisk_pipes() as (reader, writer, stdin_fd, stdout_fd):

        async def script() -> int:
            try:
                return await run_script_async(
                    handler,
                    stdin_fd,
                    stdout_fd,
                    logger=logging.getLogger(LOGGER_NAME),
                    **options,
                )
            finally:  # the process would exit here: Asterisk sees EOF
                os.close(stdin_fd)
                os.close(stdout_fd)

        code, result = await asyncio.gather(script(), FakeAsterisk(env, steps).play(reader, writer))
        return code, result


async def test_same_handler_runs_in_script_mode(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    handler = Recorder(route_dialogue)
    code, result = await run_both(handler, script_env(), [Expect(p) for p in ROUTE_STEPS])
    assert code == EXIT_OK
    assert result.ok and result.server_closed
    assert result.commands[1] == 'EXEC MSet "PRIVNUM_ACTION=bridge,PRIVNUM_LINKEDID=L-9"'
    (session,) = handler.sessions
    assert session.script == "privnum-route" and session.args == ("L-9",)
    assert session.uniqueid == "pnlab-1795869349.39"
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("agi call")]
    assert "script=privnum-route uniqueid=pnlab-1795869349.39 outcome=completed" in line
    assert all(MERCHANT not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "steps",
    [
        [Expect(ROUTE_STEPS[0], ("200 result=1",), hangup_before_reply=True)],
        [
            Expect(ROUTE_STEPS[0]),
            Expect(ROUTE_STEPS[1], ("200 result=0",), hangup_before_reply=True),
        ],
        [
            Expect(ROUTE_STEPS[0]),
            Expect(
                ROUTE_STEPS[1],
                ("511 Command Not Permitted on a dead channel or intercept routine",),
            ),
        ],
        [Expect(ROUTE_STEPS[0], ()), HalfClose()],
    ],
    ids=["hangup-first-reply", "hangup-mset-reply", "511", "eof"],
)
async def test_hangup_guard(steps: list[Step]) -> None:
    """What breaks pyst2: an unprompted HANGUP, 511, EOF. Here: a clean hangup outcome."""
    handler = Recorder(route_dialogue)
    code, result = await run_both(handler, script_env(), steps)
    assert code == EXIT_OK
    assert result.ok, result.mismatch
    assert isinstance(handler.errors[0], AgiHangup)
    assert handler.sessions[0].hungup


async def test_single_line_520_does_not_swallow_the_next_reply() -> None:
    """pyst2 reads on after a one-line 520, eating the next reply (or blocking forever)."""
    seen: list[int] = []

    async def body(session: AgiSession) -> None:
        with pytest.raises(AgiCommandError) as info:
            await session.command("EXEC Bogus")
        seen.append(info.value.code)
        reply = await session.command("NOOP")
        seen.append(int(reply.result))

    handler = Recorder(body)
    code, result = await run_both(
        handler,
        script_env(),
        [
            Expect("EXEC Bogus", ("520 Invalid command syntax.  Proper usage not available.",)),
            Expect("NOOP", ("200 result=7",)),
        ],
    )
    assert (code, seen) == (EXIT_OK, [520, 7])
    assert result.ok


@pytest.mark.parametrize(
    ("env", "steps"),
    [
        (b"", [HalfClose()]),
        (b"garbage\n\n", []),
        (script_env()[:50], [HalfClose()]),
    ],
    ids=["empty", "garbage", "truncated"],
)
async def test_bad_input_exit_code(env: bytes, steps: list[Step]) -> None:
    handler = Recorder(route_dialogue)
    code, result = await run_both(handler, env or None, steps)
    assert code == EXIT_BAD_INPUT
    assert handler.sessions == [] and result.commands == []


async def test_env_timeout_in_script_mode() -> None:
    handler = Recorder(route_dialogue)
    code, _ = await run_both(handler, script_env()[:100], [], env_timeout=0.2)
    assert code == EXIT_BAD_INPUT and handler.sessions == []


async def test_handler_failure_exit_code(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)

    async def boom(session: AgiSession) -> None:
        raise RuntimeError(f"no binding for {MERCHANT}")

    code, result = await run_both(Recorder(boom), script_env(), [])
    assert code == EXIT_FAILED
    assert result.server_closed and result.commands == []
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("agi call")]
    assert "outcome=failed" in line and line.endswith("error=RuntimeError")
    assert all(MERCHANT not in r.getMessage() for r in caplog.records)


async def test_command_timeout_in_script_mode() -> None:
    handler = Recorder(route_dialogue)
    code, _ = await run_both(
        handler, script_env(), [Expect(ROUTE_STEPS[0], delay=1.0)], command_timeout=0.2
    )
    assert code == EXIT_FAILED


async def test_regular_files_as_stdin_and_stdout(tmp_path: Path) -> None:
    """``privnum agi < env.txt > out.txt``: no pipes, the fallback path."""
    stdin_path, stdout_path = tmp_path / "in", tmp_path / "out"
    stdin_path.write_bytes(script_env() + b"200 result=1\n200 result=0\n")
    handler = Recorder(route_dialogue)
    with stdin_path.open("rb") as stdin, stdout_path.open("wb") as stdout:
        code = await run_script_async(handler, stdin, stdout)
        assert os.get_blocking(stdin.fileno()) and os.get_blocking(stdout.fileno())
    assert code == EXIT_OK and handler.finished == 1
    lines = stdout_path.read_text().splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["VERBOSE", "EXEC"]


async def test_pipe_descriptors_are_left_open_and_blocking() -> None:
    handler = Recorder(route_dialogue)
    async with asterisk_pipes() as (reader, writer, stdin_fd, stdout_fd):
        peer = asyncio.create_task(
            FakeAsterisk(script_env(), [Expect(p) for p in ROUTE_STEPS], close_timeout=0.2).play(
                reader, writer
            )
        )
        code = await run_script_async(handler, stdin_fd, stdout_fd)
        assert code == EXIT_OK
        assert os.get_blocking(stdin_fd) and os.get_blocking(stdout_fd)
        os.fstat(stdin_fd)  # still open: the caller's descriptors are not ours to close
        os.fstat(stdout_fd)
        os.close(stdout_fd)
        result = await peer
        assert result.ok and result.server_closed


# --------------------------------------------------------------------------- a real process


CHILD = """
import asyncio, logging, sys
from agi.script_mode import run_script_async
from tests.agi.helpers import route_dialogue
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
sys.exit(asyncio.run(run_script_async(route_dialogue, sys.stdin, sys.stdout, command_timeout=5.0)))
"""


async def _spawn() -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-c",
        CHILD,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )


async def test_subprocess_over_stdin_stdout() -> None:
    proc = await _spawn()
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    result = await FakeAsterisk(script_env(), [Expect(p) for p in ROUTE_STEPS]).play(
        proc.stdout, proc.stdin
    )
    stderr = await proc.stderr.read()
    assert await proc.wait() == EXIT_OK, stderr
    assert result.ok and result.server_closed
    assert b"outcome=completed" in stderr
    assert MERCHANT.encode() not in stderr  # pyst2 would dump the whole env to stderr


async def test_subprocess_survives_sighup() -> None:
    """Asterisk signals an AGI script with SIGHUP on hangup; it must not kill us mid-call."""
    proc = await _spawn()
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(script_env())
    await proc.stdin.drain()
    first = await asyncio.wait_for(proc.stdout.readline(), 10)
    assert first.startswith(b"VERBOSE ")
    proc.send_signal(signal.SIGHUP)
    await asyncio.sleep(0.1)
    proc.stdin.write(b"200 result=1\n")
    await proc.stdin.drain()
    # Depending on when the loop saw the signal, the MSet is not sent or it gets a dead-channel
    # 511 (what Asterisk answers after the hangup); both end as a clean "hangup".
    second = await asyncio.wait_for(proc.stdout.readline(), 10)
    if second:
        assert second.startswith(b"EXEC MSet ")
        proc.stdin.write(b"511 Command Not Permitted on a dead channel or intercept routine\n")
        await proc.stdin.drain()
        assert await asyncio.wait_for(proc.stdout.read(), 10) == b""
    proc.stdin.close()
    stderr = await proc.stderr.read()
    assert await proc.wait() == EXIT_OK, stderr
    assert b"outcome=hangup" in stderr
