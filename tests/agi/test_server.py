"""FastAGI server over real sockets, against a scripted fake Asterisk."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agi.errors import AgiCommandError, AgiHangup, AgiProtocolError, AgiTimeout
from agi.session import AgiSession
from tests.agi.fake_asterisk import (
    Close,
    Expect,
    FakeAsterisk,
    HalfClose,
    Pause,
    SendLine,
    SendRaw,
)
from tests.agi.helpers import (
    BLOCKS,
    LOGGER_NAME,
    MERCHANT,
    ROUTE_STEPS,
    Recorder,
    call_env,
    route_dialogue,
    serving,
    wait_for,
)

pytestmark = pytest.mark.asyncio

HOST = "127.0.0.1"


def _call_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("agi call ")]


# --------------------------------------------------------------------------- normal dialogue


@pytest.mark.parametrize("index", range(len(BLOCKS)))
async def test_normal_dialogue(index: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    handler = Recorder(route_dialogue)
    async with serving({"route": handler}) as server:
        peer = FakeAsterisk(
            call_env(index, args=("linked-7",)),
            [Expect(ROUTE_STEPS[0], ("200 result=1",)), Expect(ROUTE_STEPS[1], ("200 result=0",))],
        )
        result = await peer.run(HOST, server.port)
        assert result.ok, result.mismatch
        assert result.server_closed and result.extra == []
        assert result.commands[1] == 'EXEC MSet "PRIVNUM_ACTION=bridge,PRIVNUM_LINKEDID=linked-7"'
        (session,) = handler.sessions
        assert session.env == dict(BLOCKS[index]) | {"agi_arg_1": "linked-7"}
        assert session.args == ("linked-7",)
        assert session.script == "route"
        assert not session.hungup
        assert handler.finished == 1
        assert server.stats.as_dict() | {"active": 0} == server.stats.as_dict()
        assert (server.stats.accepted, server.stats.completed) == (1, 1)
    (line,) = _call_lines(caplog)
    uniqueid = dict(BLOCKS[index])["agi_uniqueid"]
    assert f"script=route uniqueid={uniqueid} outcome=completed duration_ms=" in line
    assert all(MERCHANT not in r.getMessage() for r in caplog.records)


async def test_calls_run_concurrently() -> None:
    gate = asyncio.Event()

    async def body(session: AgiSession) -> None:
        await gate.wait()
        await route_dialogue(session)

    handler = Recorder(body)
    async with serving({"route": handler}) as server:
        peers = [
            FakeAsterisk(call_env(i % len(BLOCKS)), [Expect(p) for p in ROUTE_STEPS])
            for i in range(20)
        ]
        runs = [asyncio.create_task(p.run(HOST, server.port)) for p in peers]
        await wait_for(lambda: server.active_connections == 20)
        assert server.stats.active == 20
        gate.set()
        results = await asyncio.gather(*runs)
        assert all(r.ok and r.server_closed for r in results)
        assert server.stats.completed == 20 and server.active_connections == 0


# --------------------------------------------------------------------------- hangups


async def test_hangup_before_the_reply_is_skipped_and_reported() -> None:
    handler = Recorder(route_dialogue)
    async with serving({"route": handler}) as server:
        peer = FakeAsterisk(
            call_env(),
            [Expect(ROUTE_STEPS[0], ("200 result=1",), hangup_before_reply=True)],
        )
        result = await peer.run(HOST, server.port)
        assert result.ok and result.server_closed
        assert len(result.commands) == 1  # nothing sent after the hangup
        (error,) = handler.errors
        assert isinstance(error, AgiHangup)
        assert error.reply is not None and error.reply.result == "1"  # the reply still read
        assert handler.sessions[0].hungup
        assert (server.stats.hangup, server.stats.failed) == (1, 0)


async def test_unprompted_hangup_between_commands() -> None:
    async def body(session: AgiSession) -> None:
        reply = await session.command("NOOP")
        assert reply.ok
        await asyncio.sleep(0.2)  # HANGUP arrives while we are not waiting for anything
        await session.command("NOOP")

    handler = Recorder(body)
    async with serving({"route": handler}) as server:
        peer = FakeAsterisk(
            call_env(),
            [
                Expect("NOOP", ("200 result=0",)),
                SendLine("HANGUP"),
                Expect("NOOP", ("200 result=0",)),
            ],
        )
        result = await peer.run(HOST, server.port)
        assert result.ok and result.commands == ["NOOP", "NOOP"]
        (error,) = handler.errors
        assert isinstance(error, AgiHangup) and error.reply is not None and error.reply.ok
        assert server.stats.hangup == 1


@pytest.mark.parametrize("then", [HalfClose(), Close()])
async def test_hangup_as_the_only_thing(then: HalfClose | Close) -> None:
    handler = Recorder(route_dialogue)
    async with serving({"route": handler}) as server:
        peer = FakeAsterisk(call_env(), [SendLine("HANGUP"), then])
        await peer.run(HOST, server.port)
        await wait_for(lambda: server.stats.hangup == 1)
        (error,) = handler.errors
        assert isinstance(error, AgiHangup) and error.reply is None
        assert handler.sessions[0].hungup


async def test_dead_channel_511_is_a_hangup() -> None:
    handler = Recorder(route_dialogue)
    async with serving({"route": handler}) as server:
        peer = FakeAsterisk(
            call_env(),
            [
                Expect(
                    ROUTE_STEPS[0],
                    ("511 Command Not Permitted on a dead channel or intercept routine",),
                )
            ],
        )
        result = await peer.run(HOST, server.port)
        assert result.ok and result.server_closed
        (error,) = handler.errors
        assert isinstance(error, AgiHangup) and error.reply is not None
        assert error.reply.code == 511
        assert server.stats.hangup == 1


# --------------------------------------------------------------------------- command errors


@pytest.mark.parametrize(
    ("reply", "code", "usage"),
    [
        (("510 Invalid or unknown command",), 510, ""),
        (("520 Invalid command syntax.  Proper usage not available.",), 520, ""),
        (
            (
                "520-Invalid command syntax.  Proper usage follows:",
                " Usage: EXEC <application> <options>",
                "200 result=0 (not a reply: usage text)",
                "520 End of proper usage.",
            ),
            520,
            " Usage: EXEC <application> <options>\n200 result=0 (not a reply: usage text)\n"
            "520 End of proper usage.",
        ),
    ],
)
async def test_command_errors_keep_the_session_in_step(
    reply: tuple[str, ...], code: int, usage: str
) -> None:
    seen: list[AgiCommandError] = []

    async def body(session: AgiSession) -> None:
        with pytest.raises(AgiCommandError) as info:
            await session.command("EXEC Bogus")
        seen.append(info.value)
        after = await session.command("NOOP")  # the next reply is ours, not leftover usage
        assert after.ok and after.data == "next"

    handler = Recorder(body)
    async with serving({"route": handler}) as server:
        peer = FakeAsterisk(
            call_env(), [Expect("EXEC Bogus", reply), Expect("NOOP", ("200 result=0 (next)",))]
        )
        result = await peer.run(HOST, server.port)
        assert result.ok, result.mismatch
        (error,) = seen
        assert (error.code, error.usage) == (code, usage)
        assert str(error).startswith(f"EXEC Bogus: {code}")
        assert server.stats.completed == 1 and handler.errors == []


@pytest.mark.parametrize(
    "reply",
    [("999 what",), ("garbage",), ("200 result=1 (unterminated",), ("\xff\xfe",)],
)
async def test_garbage_reply_fails_only_that_call(reply: tuple[str, ...]) -> None:
    handler = Recorder(route_dialogue)
    async with serving({"route": handler}) as server:
        result = await FakeAsterisk(call_env(), [Expect(ROUTE_STEPS[0], reply)]).run(
            HOST, server.port
        )
        assert result.server_closed
        assert isinstance(handler.errors[0], AgiProtocolError)
        assert server.stats.failed == 1
        good = await FakeAsterisk(call_env(1), [Expect(p) for p in ROUTE_STEPS]).run(
            HOST, server.port
        )
        assert good.ok and server.stats.completed == 1


@pytest.mark.parametrize(
    "steps",
    [
        [Expect(ROUTE_STEPS[0], ()), Close()],  # EOF instead of a reply
        [Expect(ROUTE_STEPS[0], ()), SendRaw(b"200 resu"), Close()],  # EOF mid-reply
        [Expect(ROUTE_STEPS[0], ()), HalfClose()],
    ],
    ids=["eof", "eof-mid-reply", "half-close"],
)
async def test_eof_mid_command_is_a_hangup(steps: list[Expect | Close | SendRaw]) -> None:
    handler = Recorder(route_dialogue)
    async with serving({"route": handler}) as server:
        await FakeAsterisk(call_env(), steps).run(HOST, server.port)
        await wait_for(lambda: server.stats.hangup == 1)
        assert isinstance(handler.errors[0], AgiHangup)
        assert server.active_connections == 0


# --------------------------------------------------------------------------- bad input


def _truncated(at: int) -> bytes:
    return call_env()[:at]


@pytest.mark.parametrize(
    ("env", "steps"),
    [
        (_truncated(30), [HalfClose()]),  # EOF mid-line
        (_truncated(call_env().index(b"agi_channel")), [HalfClose()]),  # EOF between lines
        (call_env()[:-1], [HalfClose()]),  # EOF just before the blank line
        (b"\x00\xff\xfe\x01garbage\n\n", []),
        (b"GET / HTTP/1.1\r\nHost: privnum\r\n\r\n", []),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)), []),
        (b"\n", []),  # empty environment
        (b"agi_network: yes\nagi_arg_2: gap\n\n", []),
    ],
    ids=[
        "eof-mid-line",
        "eof-between-lines",
        "eof-before-blank",
        "binary",
        "http",
        "tls",
        "empty-env",
        "arg-gap",
    ],
)
async def test_bad_environment_is_rejected_and_server_keeps_serving(
    env: bytes, steps: list[HalfClose], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    handler = Recorder(route_dialogue)
    async with serving({"route": handler}) as server:
        bad = await FakeAsterisk(env, steps).run(HOST, server.port)
        assert bad.server_closed and bad.commands == [] and bad.extra == []
        assert server.stats.rejected_input == 1
        good = await FakeAsterisk(call_env(), [Expect(p) for p in ROUTE_STEPS]).run(
            HOST, server.port
        )
        assert good.ok
        assert len(handler.sessions) == 1 and server.stats.completed == 1
    assert any("outcome=rejected_input" in line for line in _call_lines(caplog))


@pytest.mark.parametrize(
    "env",
    [
        call_env(args=("x" * 100_000,)),  # one giant line (beyond the stream limit too)
        call_env(args=("x" * 3600,)),  # one line within the stream limit, env over 4096
        call_env(args=tuple("y" * 40 for _ in range(200))),  # many small lines
        b"agi_x: " + b"z" * 200_000,  # endless line, never a newline
    ],
    ids=["giant-line", "big-line", "many-lines", "no-newline"],
)
async def test_oversized_environment_closes_only_that_connection(env: bytes) -> None:
    gate = asyncio.Event()

    async def body(session: AgiSession) -> None:
        await gate.wait()
        await route_dialogue(session)

    handler = Recorder(body)
    async with serving({"route": handler}, env_max_bytes=4096) as server:
        good_task = asyncio.create_task(
            FakeAsterisk(call_env(2), [Expect(p) for p in ROUTE_STEPS]).run(HOST, server.port)
        )
        await wait_for(lambda: len(handler.sessions) == 1)  # good call in flight
        bad = await FakeAsterisk(env, [HalfClose()]).run(HOST, server.port)
        assert bad.server_closed
        assert server.stats.rejected_input == 1
        gate.set()
        good = await good_task
        assert good.ok and good.server_closed
        assert server.stats.completed == 1 and len(handler.sessions) == 1


async def test_bare_connect_and_close_is_harmless() -> None:
    handler = Recorder(route_dialogue)
    async with serving({"route": handler}) as server:
        for _ in range(3):
            _, writer = await asyncio.open_connection(HOST, server.port)
            writer.close()
            await writer.wait_closed()
        await wait_for(lambda: server.stats.empty == 3)
        good = await FakeAsterisk(call_env(), [Expect(p) for p in ROUTE_STEPS]).run(
            HOST, server.port
        )
        assert good.ok and server.stats.completed == 1
        assert server.stats.rejected_input == 0 and server.stats.accepted == 4


# --------------------------------------------------------------------------- slow peers


@pytest.mark.parametrize(
    ("env", "steps"),
    [
        (b"", [Pause(1.0)]),  # connects, says nothing
        (call_env()[:100], [Pause(1.0)]),  # stalls mid-environment
        (call_env()[:-1], [Pause(1.0)]),  # never sends the blank line
    ],
    ids=["silent", "stalled", "no-terminator"],
)
async def test_env_timeout(env: bytes, steps: list[Pause]) -> None:
    handler = Recorder(route_dialogue)
    async with serving({"route": handler}, env_timeout=0.2) as server:
        result = await FakeAsterisk(env or None, steps).run(HOST, server.port)
        assert result.server_closed
        assert server.stats.rejected_input == 1 and handler.sessions == []


async def test_slow_env_within_the_timeout_is_fine() -> None:
    handler = Recorder(route_dialogue)
    async with serving({"route": handler}, env_timeout=2.0) as server:
        peer = FakeAsterisk(call_env(), [Expect(p) for p in ROUTE_STEPS], env_chunk=50)
        result = await peer.run(HOST, server.port)
        assert result.ok and server.stats.completed == 1


async def test_command_timeout_fails_the_call_and_poisons_the_session() -> None:
    after: list[BaseException] = []

    async def body(session: AgiSession) -> None:
        try:
            await session.command("NOOP")
        except AgiTimeout:
            with pytest.raises(AgiTimeout) as info:  # out of step: refuse to guess
                await session.command("NOOP")
            after.append(info.value)
            raise

    handler = Recorder(body)
    async with serving({"route": handler}, command_timeout=0.2) as server:
        result = await FakeAsterisk(call_env(), [Expect("NOOP", ("200 result=0",), delay=1.0)]).run(
            HOST, server.port
        )
        assert result.server_closed
        assert isinstance(handler.errors[0], AgiTimeout)
        assert len(after) == 1
        assert server.stats.failed == 1


async def test_per_command_timeout_override() -> None:
    async def body(session: AgiSession) -> None:
        reply = await session.command("NOOP", timeout_s=3.0)
        assert reply.ok

    handler = Recorder(body)
    async with serving({"route": handler}, command_timeout=0.1) as server:
        result = await FakeAsterisk(call_env(), [Expect("NOOP", delay=0.3)]).run(HOST, server.port)
        assert result.ok and server.stats.completed == 1


async def test_call_timeout_bounds_a_stuck_handler(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)

    async def body(session: AgiSession) -> None:
        await asyncio.Event().wait()

    handler = Recorder(body)
    async with serving({"stuck": handler}, call_timeout=0.2) as server:
        result = await FakeAsterisk(call_env(script="stuck")).run(HOST, server.port)
        assert result.server_closed and result.commands == []
        assert server.stats.failed == 1
        assert isinstance(handler.errors[0], asyncio.CancelledError)


@pytest.mark.parametrize(
    ("raised", "error"),
    [(TimeoutError(), "TimeoutError"), (AgiTimeout("NOOP: no reply"), "AgiTimeout")],
)
async def test_handler_own_timeouts_are_not_call_timeouts(
    raised: Exception, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)

    async def body(session: AgiSession) -> None:
        raise raised

    async with serving({"route": Recorder(body)}, call_timeout=5.0) as server:
        result = await FakeAsterisk(call_env()).run(HOST, server.port)
        assert result.server_closed and server.stats.failed == 1
    (line,) = _call_lines(caplog)
    assert "outcome=failed" in line and line.endswith(f"error={error}")


# --------------------------------------------------------------------------- routing


async def test_unknown_route_is_closed_without_a_command(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    handler = Recorder(route_dialogue)
    async with serving({"route": handler}) as server:
        result = await FakeAsterisk(call_env(script="nosuch")).run(HOST, server.port)
        assert result.server_closed and result.commands == [] and result.extra == []
        assert server.stats.unknown_route == 1 and handler.sessions == []
    (line,) = _call_lines(caplog)
    assert "script=nosuch" in line and "outcome=unknown_route" in line


@pytest.mark.parametrize("query", ["mode=test", "a=1&b=2", ""])
async def test_query_is_stripped_from_the_script(query: str) -> None:
    handler = Recorder(route_dialogue)
    async with serving({"route": handler}) as server:
        result = await FakeAsterisk(
            call_env(script=f"route?{query}"), [Expect(p) for p in ROUTE_STEPS]
        ).run(HOST, server.port)
        assert result.ok
        (session,) = handler.sessions
        assert session.script == "route"
        assert session.environment.query == query
        assert session.env["agi_network_script"] == f"route?{query}"


async def test_routes_dispatch_by_script() -> None:
    first, second = Recorder(route_dialogue), Recorder(route_dialogue)
    async with serving({"route": first, "callback": second}) as server:
        for script in ("callback", "route", "callback"):
            result = await FakeAsterisk(
                call_env(script=script), [Expect(p) for p in ROUTE_STEPS]
            ).run(HOST, server.port)
            assert result.ok
        assert (len(first.sessions), len(second.sessions)) == (1, 2)


# --------------------------------------------------------------------------- isolation


async def test_handler_exception_is_isolated_and_logged_quietly(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    gate = asyncio.Event()

    async def boom(session: AgiSession) -> None:
        await gate.wait()
        raise RuntimeError(f"lookup failed for {MERCHANT}")

    async def slow_good(session: AgiSession) -> None:
        await gate.wait()
        await asyncio.sleep(0.05)
        await route_dialogue(session)

    async with serving({"boom": Recorder(boom), "route": Recorder(slow_good)}) as server:
        runs = [
            asyncio.create_task(FakeAsterisk(call_env(script="boom")).run(HOST, server.port)),
            asyncio.create_task(
                FakeAsterisk(call_env(), [Expect(p) for p in ROUTE_STEPS]).run(HOST, server.port)
            ),
        ]
        await wait_for(lambda: server.active_connections == 2)
        gate.set()
        bad, good = await asyncio.gather(*runs)
        assert bad.server_closed and bad.commands == []
        assert good.ok
        assert (server.stats.failed, server.stats.completed) == (1, 1)
    warning = [r for r in caplog.records if "outcome=failed" in r.getMessage()]
    assert len(warning) == 1 and warning[0].levelno == logging.WARNING
    assert "error=RuntimeError" in warning[0].getMessage()
    assert warning[0].exc_info is None
    debug = [r for r in caplog.records if r.exc_info and r.levelno == logging.DEBUG]
    assert len(debug) == 1 and debug[0].exc_info is not None
    assert isinstance(debug[0].exc_info[1], RuntimeError)
    assert not [r for r in caplog.records if r.name == "asyncio"]
    assert all(MERCHANT not in r.getMessage() for r in caplog.records)
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", "")


# --------------------------------------------------------------------------- lifecycle


async def test_graceful_shutdown_finishes_in_flight_and_refuses_new() -> None:
    gate = asyncio.Event()

    async def body(session: AgiSession) -> None:
        await gate.wait()
        await route_dialogue(session)

    handler = Recorder(body)
    async with serving({"route": handler}) as server:
        port = server.port
        in_flight = asyncio.create_task(
            FakeAsterisk(call_env(), [Expect(p) for p in ROUTE_STEPS]).run(HOST, port)
        )
        await wait_for(lambda: len(handler.sessions) == 1)
        stopping = asyncio.create_task(server.shutdown(grace=5.0))
        await asyncio.sleep(0.05)
        assert not stopping.done()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(HOST, port)
        gate.set()
        result = await in_flight
        await stopping
        assert result.ok and result.server_closed
        assert (server.stats.completed, server.stats.cancelled) == (1, 0)
        assert server.active_connections == 0


async def test_shutdown_cancels_calls_past_the_grace_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)

    async def body(session: AgiSession) -> None:
        await asyncio.Event().wait()

    handler = Recorder(body)
    async with serving({"route": handler}) as server:
        peer_task = asyncio.create_task(FakeAsterisk(call_env()).run(HOST, server.port))
        await wait_for(lambda: len(handler.sessions) == 1)
        await server.shutdown(grace=0.1)
        result = await peer_task
        assert result.server_closed
        assert server.stats.cancelled == 1 and server.active_connections == 0
        assert isinstance(handler.errors[0], asyncio.CancelledError)
    assert any("outcome=cancelled" in line for line in _call_lines(caplog))


async def test_serve_forever_returns_after_shutdown() -> None:
    handler = Recorder(route_dialogue)
    async with serving({"route": handler}) as server:
        forever = asyncio.create_task(server.serve_forever())
        result = await FakeAsterisk(call_env(), [Expect(p) for p in ROUTE_STEPS]).run(
            HOST, server.port
        )
        assert result.ok
        assert not forever.done()
        await server.shutdown(grace=1.0)
        await asyncio.wait_for(forever, 2.0)
        assert forever.done() and forever.exception() is None


async def test_start_twice_is_an_error() -> None:
    async with serving({}) as server:
        with pytest.raises(RuntimeError):
            await server.start()


async def test_routes_are_copied_not_shared() -> None:
    routes = {"route": Recorder(route_dialogue)}
    async with serving(routes) as server:
        routes["late"] = Recorder(route_dialogue)  # no registration after construction
        result = await FakeAsterisk(call_env(script="late")).run(HOST, server.port)
        assert result.server_closed and server.stats.unknown_route == 1
