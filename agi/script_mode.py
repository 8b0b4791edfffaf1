"""AGI-script mode: one process per call, AGI over stdin/stdout, same handler as FastAGI.

Why not pyst2 (``asterisk.agi.AGI``)? Evaluated against pyst2 0.5.1 and found unsound here, so
this module runs our own protocol layer (:mod:`agi.protocol`, :class:`agi.session.AgiSession`)
on asyncio pipe streams instead:

* ``_quote`` wraps arguments in ``"..."`` without escaping ``"``/``\\``/newlines: a value can end
  the argument or inject a second command.
* an unprompted ``HANGUP`` line is read as the reply (no status code -> ``AGIUnknownError``)
  and the real reply is then taken as the reply to the *next* command;
* a single-line ``520 ... Proper usage not available.`` makes it read on, waiting for a usage
  terminator that never comes (it swallows the next reply or blocks forever);
  ``511`` (dead channel) is an unknown error; EOF in the environment yields an empty env;
* blocking reads with no timeout at all; ``signal.signal(SIGHUP)`` and writes to stderr in the
  constructor, including the whole environment (the caller's number) - a privacy leak into
  the Asterisk console/log.

Wrapping it would mean replacing every one of those paths, i.e. writing this layer anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import time
from collections.abc import AsyncIterator
from typing import IO, Any

from agi.errors import AgiProtocolError, AgiTimeout
from agi.server import CallOutcome, CallResult, Handler, log_call, run_handler
from agi.session import STREAM_LIMIT, AgiSession, LineWriter, read_environment

_LOG = logging.getLogger("privnum.agi.script")

EXIT_OK = 0  # handler completed, or the caller hung up
EXIT_FAILED = 1  # handler raised, a command failed/timed out, or call_timeout passed
EXIT_BAD_INPUT = 2  # no usable AGI environment on stdin
_EXIT_CODES = {
    CallOutcome.COMPLETED: EXIT_OK,
    CallOutcome.HANGUP: EXIT_OK,
    CallOutcome.FAILED: EXIT_FAILED,
    CallOutcome.REJECTED_INPUT: EXIT_BAD_INPUT,
}


class _FileWriter:
    """Blocking writer for a regular file on stdout (tests, ``privnum agi > file``)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    async def drain(self) -> None:
        return None


def _fileno(stream: IO[Any] | int) -> int:
    if isinstance(stream, int):
        return stream
    with contextlib.suppress(AttributeError, ValueError):
        stream.flush()
    return stream.fileno()


def _is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


@contextlib.asynccontextmanager
async def _streams(
    in_fd: int, out_fd: int
) -> AsyncIterator[tuple[asyncio.StreamReader, LineWriter]]:
    """Async streams on duplicates of the two descriptors (the originals stay open/unchanged)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=STREAM_LIMIT)
    cleanups: list[Any] = []
    blocking = {fd: os.get_blocking(fd) for fd in (in_fd, out_fd)}
    try:
        if _is_regular(in_fd):
            with os.fdopen(os.dup(in_fd), "rb") as source:
                reader.feed_data(source.read())
            reader.feed_eof()
        else:
            rfile = os.fdopen(os.dup(in_fd), "rb", buffering=0)
            try:
                read_transport, _ = await loop.connect_read_pipe(
                    lambda: asyncio.StreamReaderProtocol(reader), rfile
                )
            except BaseException:
                rfile.close()
                raise
            cleanups.append(read_transport.close)
        writer: LineWriter
        if _is_regular(out_fd):
            dup = os.dup(out_fd)
            cleanups.append(lambda: os.close(dup))
            writer = _FileWriter(dup)
        else:
            wfile = os.fdopen(os.dup(out_fd), "wb", buffering=0)
            try:
                transport, protocol = await loop.connect_write_pipe(
                    asyncio.streams.FlowControlMixin, wfile
                )
            except BaseException:
                wfile.close()
                raise
            stream_writer = asyncio.StreamWriter(transport, protocol, None, loop)
            cleanups.append(stream_writer.close)
            writer = stream_writer
        yield reader, writer
    finally:
        for cleanup in reversed(cleanups):
            with contextlib.suppress(OSError):
                cleanup()
        await asyncio.sleep(0)  # let the transports' connection_lost run
        for fd, was_blocking in blocking.items():
            with contextlib.suppress(OSError):
                os.set_blocking(fd, was_blocking)


async def run_script_async(
    handler: Handler,
    stdin: IO[Any] | int,
    stdout: IO[Any] | int,
    *,
    env_timeout: float = 5.0,
    env_max_bytes: int = 16 * 1024,
    command_timeout: float = 5.0,
    call_timeout: float = 30.0,
    logger: logging.Logger | None = None,
) -> int:
    """Serve one call on ``stdin``/``stdout`` (file objects or descriptors); return an exit code.

    SIGHUP (what Asterisk sends an AGI script when the channel hangs up) marks the session hung
    up instead of killing the process, like the ``HANGUP`` line does in FastAGI.
    """
    log = logger or _LOG
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    session: AgiSession | None = None
    sighup = False

    def on_sighup() -> None:
        nonlocal sighup
        sighup = True
        if session is not None:
            session.mark_hangup()

    handler_installed = False
    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        handler_installed = True
    script = uniqueid = ""
    try:
        async with _streams(_fileno(stdin), _fileno(stdout)) as (reader, writer):
            try:
                environment = await read_environment(
                    reader, max_bytes=env_max_bytes, env_timeout=env_timeout
                )
                if environment is None:
                    raise AgiProtocolError("no AGI environment on stdin")
            except (AgiProtocolError, AgiTimeout) as exc:
                result = CallResult(CallOutcome.REJECTED_INPUT, str(exc))
            else:
                script, uniqueid = environment.script, environment.uniqueid
                session = AgiSession(reader, writer, environment, command_timeout=command_timeout)
                if sighup:
                    session.mark_hangup()
                result = await run_handler(handler, session, call_timeout=call_timeout,
                                           logger=log)
    finally:
        if handler_installed:
            loop.remove_signal_handler(signal.SIGHUP)
    log_call(log, script=script, uniqueid=uniqueid, result=result, started=started)
    return _EXIT_CODES[result.outcome]
