"""Judged calls for a failover run: Asterisk's side of one FastAGI call against a list of
hosts tried in order (what the dialplan does: a host that refuses, drops the call or gives no
answer is followed by the next), and the verdict on each answer.

Truth: a call from A to X bridges iff the binding (A, X) is active, and then to its B. A call
that overlaps the binding's release may go either way. A call without any answer is what
Asterisk plays the failure prompt for: failed closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

from tests.agi.fake_asterisk import EnvBlock, env_bytes, load_env_blocks

_ACTION = b"PRIVNUM_ACTION="
_REASON = b"PRIVNUM_REASON="
_DIAL = b"PRIVNUM_DIAL_NUMBER"


@dataclass
class Bound:
    """A binding as the harness knows it (times on the monotonic clock)."""

    binding_id: str
    caller: str  # A, E.164
    x: str
    buyer: str  # B, E.164
    issued_at: float
    release_started: float | None = None
    released_at: float | None = None


@dataclass
class Answer:
    action: str = ""
    reason: str = ""
    dial: str = ""
    node: str = ""
    tries: int = 0


@dataclass
class Placed:
    started: float
    ended: float
    binding: Bound | None  # None: a caller with no binding to X (a stranger)
    answer: Answer
    first_choice: str
    fresh: bool = False  # placed right after its binding was issued on another node


@dataclass
class Verdicts:
    calls: int = 0
    bridged: int = 0
    rejected_right: int = 0
    misroutes: int = 0
    resurrected: int = 0
    failed_closed: list[Placed] = field(default_factory=list)
    fresh: int = 0
    fresh_routed: int = 0


@cache
def _template() -> EnvBlock:
    return load_env_blocks()[0]


def national(e164: str) -> str:
    return e164[3:] if e164.startswith("+86") else e164


def env_for(caller: str, x: str, uniqueid: str) -> bytes:
    return env_bytes(_template(), script="route", args=[f"L{uniqueid}"], overrides={
        "agi_callerid": national(caller), "agi_extension": national(x),
        "agi_uniqueid": uniqueid})


async def _one_host(port: int, env: bytes, limit: float) -> Answer | None:
    """One FastAGI conversation; ``None`` when the host gave no answer (refused, dropped,
    too slow)."""
    try:
        async with asyncio.timeout(limit):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(env)
                answer = Answer()
                while True:
                    line = await reader.readline()
                    if not line:
                        return None  # the node went away before it answered
                    if line.startswith(b"SET VARIABLE "):
                        if _DIAL in line:
                            answer.dial = line.rsplit(b" ", 1)[-1].strip().strip(b'"').decode()
                        writer.write(b"200 result=1\n")
                    elif line.startswith(b"EXEC MSet"):
                        answer.action = _field(line, _ACTION)
                        answer.reason = _field(line, _REASON)
                        writer.write(b"200 result=0\nHANGUP\n")
                        return answer
                    else:
                        writer.write(b"510 Invalid or unknown command\n")
                    await writer.drain()
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None


def _field(line: bytes, name: bytes) -> str:
    at = line.find(name)
    if at < 0:
        return ""
    return line[at + len(name):].split(b",", 1)[0].strip().strip(b'"').decode()


async def place(hosts: Sequence[tuple[str, int]], caller: str, x: str, uniqueid: str,
                limit: float = 5.0) -> Answer:
    """Ask each host in turn until one answers (the dialplan's FastAGI failover)."""
    env = env_for(caller, x, uniqueid)
    for tries, (name, port) in enumerate(hosts, start=1):
        got = await _one_host(port, env, limit)
        if got is not None:
            got.node, got.tries = name, tries
            return got
    return Answer(tries=len(hosts))


def _digits(number: str) -> str:
    return "".join(c for c in number if c.isdigit())[-11:]


def judge(placed: Sequence[Placed]) -> Verdicts:
    v = Verdicts()
    for call in placed:
        v.calls += 1
        b, ans = call.binding, call.answer
        active_throughout = (b is not None and b.issued_at <= call.started
                             and (b.release_started is None or call.ended < b.release_started))
        ended_before = (b is not None and b.released_at is not None
                        and call.started > b.released_at)
        if call.fresh:
            v.fresh += 1
        if ans.action == "bridge":
            v.bridged += 1
            if b is None or _digits(ans.dial) != _digits(b.buyer):
                v.misroutes += 1
            elif ended_before:
                v.resurrected += 1
            elif call.fresh:
                v.fresh_routed += 1
        elif active_throughout:
            v.failed_closed.append(call)
        else:
            v.rejected_right += 1
    return v


def clock() -> float:
    return time.monotonic()
