"""The FastAGI server: accept, read the environment under limits, dispatch by route, close.

One call never affects another: every fault is contained in its connection's task, logged as one
line, counted, and answered by closing the socket (Asterisk then sets ``AGISTATUS=FAILURE`` or
leaves our variables unset, and the dialplan fails closed).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from types import MappingProxyType

from agi.deadline import Deadline, DeadlineSweeper
from agi.errors import AgiHangup, AgiProtocolError, AgiTimeout
from agi.session import STREAM_LIMIT, AgiSession, read_environment
from routing.numbers import mask

Handler = Callable[[AgiSession], Awaitable[None]]

_LOG = logging.getLogger("privnum.agi")
_CLOSE_TIMEOUT = 2.0
_NUMBER_RUN = re.compile(r"\d{7,}")  # any script's digits


class CallOutcome(StrEnum):
    """How one AGI connection ended (the ``outcome=`` of its log line)."""

    COMPLETED = "completed"  # handler returned
    HANGUP = "hangup"  # handler stopped by the caller hanging up (AgiHangup)
    FAILED = "failed"  # handler raised (incl. command errors/timeouts) or exceeded call_timeout
    REJECTED_INPUT = "rejected_input"  # malformed/oversized/slow environment
    UNKNOWN_ROUTE = "unknown_route"  # script not in the route table
    CANCELLED = "cancelled"  # cut off by shutdown after the grace period

    @property
    def ok(self) -> bool:
        return self in (CallOutcome.COMPLETED, CallOutcome.HANGUP)

    @property
    def level(self) -> int:
        return logging.INFO if self.ok else logging.WARNING


@dataclass(frozen=True)
class CallResult:
    outcome: CallOutcome
    error: str = ""  # what failed: an exception type name or "call_timeout"; never call data


@dataclass
class ServerStats:
    """Counters since start. ``accepted`` = every connection; each ends in exactly one outcome
    (a :class:`CallOutcome`, whose value names its counter) or as ``empty``."""

    accepted: int = 0
    completed: int = 0
    hangup: int = 0
    failed: int = 0
    rejected_input: int = 0
    unknown_route: int = 0
    empty: int = 0  # connect + close without a byte (port probes)
    cancelled: int = 0
    active: int = 0

    def count(self, outcome: CallOutcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def log_call(logger: logging.Logger, *, script: str, uniqueid: str, result: CallResult,
             started: float, ok_level: int = logging.INFO) -> None:
    """The line per call: script, uniqueid, duration, outcome (never caller numbers); a call
    that went well is logged at ``ok_level``."""
    level = ok_level if result.outcome.ok else result.outcome.level
    if not logger.isEnabledFor(level):
        return
    duration_ms = (time.monotonic() - started) * 1000.0
    # The uniqueid is checked at the edge (agi.protocol); a script name may be anything.
    script, uniqueid = _NUMBER_RUN.sub(lambda m: mask(m[0]), _printable(script)), _printable(
        uniqueid)
    extra = {
        "agi_script": script,
        "agi_uniqueid": uniqueid,
        "agi_outcome": result.outcome.value,
        "agi_duration_ms": round(duration_ms, 1),
    }
    suffix = f" error={result.error}" if result.error else ""
    logger.log(
        level,
        "agi call script=%s uniqueid=%s outcome=%s duration_ms=%.1f%s",
        script or "-",
        uniqueid or "-",
        result.outcome.value,
        duration_ms,
        suffix,
        extra=extra,
    )


def _printable(value: str, limit: int = 80) -> str:
    """Peer-supplied text made safe for a one-line log record."""
    return "".join(c if c.isprintable() and c != " " else "?" for c in value[:limit])


async def run_handler(
    handler: Handler,
    session: AgiSession,
    *,
    call_timeout: float,
    logger: logging.Logger,
    deadline: Deadline | None = None,
) -> CallResult:
    """Run ``handler`` under ``call_timeout`` (on ``deadline`` when the call has one); how it
    ended. Raises only CancelledError."""
    scope = deadline.limit(call_timeout) if deadline is not None else asyncio.timeout(
        call_timeout)
    ends = time.monotonic() + call_timeout
    try:
        async with scope:
            await handler(session)
    except AgiHangup:
        return CallResult(CallOutcome.HANGUP)
    except TimeoutError as exc:
        if time.monotonic() >= ends:
            logger.debug("agi handler exceeded call_timeout=%gs", call_timeout)
            return CallResult(CallOutcome.FAILED, "call_timeout")
        logger.debug("agi handler failed uniqueid=%s", session.uniqueid, exc_info=True)
        return CallResult(CallOutcome.FAILED, type(exc).__name__)
    except Exception as exc:  # one bad call must never take the server down
        logger.debug("agi handler failed uniqueid=%s", session.uniqueid, exc_info=True)
        return CallResult(CallOutcome.FAILED, type(exc).__name__)
    return CallResult(CallOutcome.COMPLETED)


class FastAgiServer:
    """FastAGI over TCP with an explicit route table (``agi://host:port/<script>``)."""

    def __init__(
        self,
        routes: Mapping[str, Handler],
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        env_timeout: float = 5.0,
        env_max_bytes: int = 16 * 1024,
        command_timeout: float = 5.0,
        call_timeout: float = 30.0,
        logger: logging.Logger | None = None,
        backlog: int = 1024,
        reuse_port: bool = False,
        ok_level: int = logging.DEBUG,
    ) -> None:
        self._routes = MappingProxyType(dict(routes))
        # Asterisk opens one connection per call; a burst must queue, not be refused.
        self._backlog = backlog
        # Several worker processes may listen on one port; the kernel spreads the calls.
        self._reuse_port = reuse_port
        self._deadlines = DeadlineSweeper()
        # A call that went well already has its INFO line from the handler (privnum.route):
        # one line per call; this one is at INFO only when something went wrong.
        self._ok_level = ok_level
        self._host = host
        self._port = port
        self._env_timeout = env_timeout
        self._env_max_bytes = env_max_bytes
        self._command_timeout = command_timeout
        self._call_timeout = call_timeout
        self._log = logger or _LOG
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._closing = False
        self._stopped = asyncio.Event()
        self.stats = ServerStats()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FastAgiServer already started")
        self._server = await asyncio.start_server(
            self._on_connect, self._host, self._port, limit=STREAM_LIMIT,
            backlog=self._backlog, reuse_port=self._reuse_port or None,
        )
        self._log.info("agi server listening on %s", ", ".join(self.addresses))

    @property
    def addresses(self) -> list[str]:
        if self._server is None:
            return []
        return [f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in self._server.sockets]

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("FastAgiServer not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def active_connections(self) -> int:
        return len(self._tasks)

    async def serve_forever(self) -> None:
        """Start if needed and wait until :meth:`shutdown` has finished."""
        if self._server is None:
            await self.start()
        await self._stopped.wait()

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop accepting, let in-flight calls finish for ``grace`` seconds, cancel the rest."""
        if self._closing:
            await self._stopped.wait()
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        pending = set(self._tasks)
        if pending:
            self._log.info("agi server draining %d call(s) for up to %gs", len(pending), grace)
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)
        if self._server is not None:
            await self._server.wait_closed()
        await self._deadlines.close()
        self._stopped.set()
        self._log.info("agi server stopped", extra=self.stats.as_dict())  # fields, not a repr

    async def __aenter__(self) -> FastAgiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown(grace=0)

    # -- one connection ----------------------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or self._closing:
            writer.transport.abort()
            return
        self._tasks.add(task)
        self.stats.accepted += 1
        self.stats.active += 1
        try:
            await self._serve(reader, writer)
        finally:
            self.stats.active -= 1
            self._tasks.discard(task)
            await _close(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        started = time.monotonic()
        call = _Call()
        deadline = self._deadlines.watch()
        try:
            result = await self._run_call(reader, writer, call, deadline)
        except asyncio.CancelledError:
            result = CallResult(CallOutcome.CANCELLED)
            raise
        except Exception as exc:  # e.g. the peer reset the connection mid-environment
            result = CallResult(CallOutcome.FAILED, type(exc).__name__)
            raise
        finally:
            self._deadlines.release(deadline)
            if call.empty:
                self.stats.empty += 1
                self._log.debug("agi connection closed without data")
            else:
                self.stats.count(result.outcome)
                log_call(self._log, script=call.script, uniqueid=call.uniqueid, result=result,
                         started=started, ok_level=self._ok_level)

    async def _run_call(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        call: _Call, deadline: Deadline) -> CallResult:
        try:
            environment = await read_environment(
                reader, max_bytes=self._env_max_bytes, env_timeout=self._env_timeout,
                deadline=deadline)
        except (AgiProtocolError, AgiTimeout) as exc:
            return CallResult(CallOutcome.REJECTED_INPUT, str(exc))
        if environment is None:
            call.empty = True
            return CallResult(CallOutcome.COMPLETED)
        call.script, call.uniqueid = environment.script, environment.uniqueid
        handler = self._routes.get(call.script)
        if handler is None:
            return CallResult(CallOutcome.UNKNOWN_ROUTE)
        session = AgiSession(reader, writer, environment, command_timeout=self._command_timeout,
                             deadline=deadline)
        return await run_handler(handler, session, call_timeout=self._call_timeout,
                                 logger=self._log, deadline=deadline)


@dataclass
class _Call:
    """What is known about a connection so far, for its log line."""

    script: str = ""
    uniqueid: str = ""
    empty: bool = False


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close without hanging on a peer that stopped reading."""
    writer.close()
    if writer.transport.get_write_buffer_size() == 0:
        # Nothing left to send: closing cannot hang, no timer needed (the usual case).
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            writer.transport.abort()
        return
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await writer.wait_closed()
    except (TimeoutError, ConnectionError, OSError):
        writer.transport.abort()
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
