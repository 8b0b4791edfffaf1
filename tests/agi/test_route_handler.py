"""The call-routing handler over a real socket, driven by the fake Asterisk peer.

The store is an in-memory stand-in here (pure unit of the handler); the same handler runs
against real SQLite/PostgreSQL/Redis stores in tests/agi/test_route_integration.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from agi import channel_vars as cv
from agi.handlers import RouteHandler, RouteOptions
from agi.server import FastAgiServer
from routing.errors import StoreUnavailable
from routing.model import (
    BindingState,
    CallAttempt,
    CallContext,
    CallerStatus,
    Direction,
    RouteBinding,
    ServiceState,
)
from tests.agi.asterisk_parse import answer_variables
from tests.agi.fake_asterisk import (
    ANSWER_STEPS,
    Expect,
    FakeAsterisk,
    SendLine,
    env_bytes,
    load_env_blocks,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
A, B, X = "+8613800000001", "+8613900000001", "+8617000000001"


def bound(matched_as: Direction = Direction.MERCHANT) -> RouteBinding:
    return RouteBinding(
        binding_id="bnd1",
        shop_id="shop1",
        order_id="ord1",
        caller_a=A,
        virtual_x=X,
        buyer_b=B,
        expires_at=NOW + timedelta(hours=1),
        state=BindingState.ACTIVE,
        matched_as=matched_as,
        shop_service=ServiceState.ENABLED,
        caller_status=CallerStatus.APPROVED,
    )


class Store:
    """Answers look-ups from a fixed table; records attempts; can fail or hang on demand."""

    def __init__(self) -> None:
        self.bindings: list[RouteBinding] = [bound()]
        self.fault: Exception | None = None
        self.hang = False
        self.attempts: list[CallAttempt] = []
        self.lookups = 0

    async def find_for_call(self, caller: str, x: str, now: datetime) -> CallContext:
        self.lookups += 1
        if self.hang:
            await asyncio.sleep(30)
        if self.fault:
            raise self.fault
        matches = []
        for b in self.bindings:
            if caller == b.caller_a:
                matches.append(b)
            elif caller == b.buyer_b:
                matches.append(bound(Direction.CALLBACK))
        return CallContext(x_in_pool=x == X, bindings=tuple(matches))

    async def record(self, attempt: CallAttempt) -> None:
        self.attempts.append(attempt)


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
async def server(store: Store) -> AsyncIterator[FastAgiServer]:
    handler = RouteHandler(
        store,
        store,
        lambda: NOW,
        RouteOptions(max_call_seconds=900, store_timeout=0.3, system_name="pbx1"),
    )
    srv = FastAgiServer({"route": handler}, port=0, command_timeout=2.0)
    await srv.start()
    yield srv
    await srv.shutdown(grace=1.0)


def call_env(callerid: str, extension: str, linkedid: str = "link-1") -> bytes:
    return env_bytes(
        load_env_blocks()[0],
        script="route",
        args=[linkedid],
        overrides={"agi_callerid": callerid, "agi_extension": extension},
    )


async def place(server: FastAgiServer, env: bytes, *extra: object) -> dict[str, str]:
    peer = FakeAsterisk(env, [*ANSWER_STEPS, *extra])  # type: ignore[list-item]
    result = await peer.run("127.0.0.1", server.port)
    assert result.ok, result.mismatch
    variables = answer_variables(result.commands)
    # One EXEC MSet; a bridge's dial number before it with its own SET VARIABLE, never in it
    # (an application's arguments are what a CDR records as lastdata).
    dial = variables.get(cv.DIAL_NUMBER, "")
    assert len(result.commands) == (2 if dial else 1)
    if dial:
        assert dial not in result.commands[-1]
    return {cv.DIAL_NUMBER: "", **variables}


async def wait_for(predicate: Callable[[], bool]) -> None:
    for _ in range(100):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_merchant_call_is_bridged_to_the_buyer_showing_x(
    server: FastAgiServer, store: Store
) -> None:
    variables = await place(server, call_env("13800000001", "17000000001"))
    assert variables == {
        cv.ACTION: "bridge",
        cv.DIAL_NUMBER: "13900000001",
        cv.CALLERID: "17000000001",
        cv.CDR_CALLERID: "13800000001",  # the shop's own number stays plain
        cv.MAX_SECONDS: "900",
        cv.WARNING_SECONDS: "0",  # no call rules here: no warning
        cv.WARNING_REPEAT: "0",
        cv.WARNING_SOUND: "beep",
        cv.RECORD: "0",  # not recorded: no id, no notice
        cv.RECORD_ID: "",
        cv.NOTICE_SOUND: "",
        cv.BINDING: "bnd1",
        cv.SHOP: "shop1",
        cv.ORDER: "ord1",
        cv.X: X,
        cv.DIRECTION: "merchant",
        cv.REASON: "bridged",
        cv.PROMPT: "",
        cv.HANGUP_CAUSE: "",
    }
    await wait_for(lambda: len(store.attempts) == 1)
    attempt = store.attempts[0]
    assert (attempt.linkedid, attempt.system_name, attempt.caller_a) == ("link-1", "pbx1", A)


async def test_buyer_callback_reaches_the_merchant(server: FastAgiServer, store: Store) -> None:
    variables = await place(server, call_env("+86 139 0000 0001", "17000000001"))
    assert (
        variables[cv.ACTION],
        variables[cv.DIAL_NUMBER],
        variables[cv.CALLERID],
        variables[cv.DIRECTION],
    ) == ("bridge", "13800000001", "17000000001", "callback")
    assert variables[cv.CDR_CALLERID] == "139****0001"  # what CDRs record of the buyer
    await wait_for(lambda: len(store.attempts) == 1)
    assert store.attempts[0].caller_masked == "139****0001"


@pytest.mark.parametrize(
    ("callerid", "extension", "reason"),
    [
        ("", "17000000001", "no_caller_id"),
        ("anonymous", "17000000001", "no_caller_id"),
        ("13700000009", "17000000001", "caller_not_authorized"),
        ("13800000001", "17000000002", "not_privacy_number"),
        ("13800000001", "s", "not_privacy_number"),
    ],
)
async def test_rejects_never_carry_a_dial_number(
    server: FastAgiServer, store: Store, callerid: str, extension: str, reason: str
) -> None:
    variables = await place(server, call_env(callerid, extension))
    assert variables[cv.ACTION] == "reject"
    assert variables[cv.REASON] == reason
    assert variables[cv.DIAL_NUMBER] == ""
    assert variables[cv.PROMPT]
    assert 1 <= int(variables[cv.HANGUP_CAUSE]) <= 127
    # nobody matched as the shop's caller: whoever it is, CDRs record the number masked
    digits = "".join(ch for ch in callerid if ch.isdigit())
    if len(digits) > 4:
        assert variables[cv.CDR_CALLERID] == f"{digits[:3]}****{digits[-4:]}"
    else:
        assert variables[cv.CDR_CALLERID] == ""


@pytest.mark.parametrize("fault", ["unavailable", "bug", "hang"])
async def test_store_faults_fail_closed_with_routing_error(
    server: FastAgiServer, store: Store, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    store.fault = {
        "unavailable": StoreUnavailable("database down"),
        "bug": RuntimeError(f"oops {B}"),
    }.get(fault)
    store.hang = fault == "hang"
    with caplog.at_level(logging.INFO, logger="privnum.route"):
        variables = await place(server, call_env("13800000001", "17000000001"))
    assert (variables[cv.ACTION], variables[cv.REASON]) == ("reject", "routing_error")
    assert variables[cv.DIAL_NUMBER] == ""
    assert "13900000001" not in caplog.text  # a foreign exception text is never logged


async def test_hangup_during_the_reply_still_records_the_attempt(
    server: FastAgiServer, store: Store
) -> None:
    peer = FakeAsterisk(
        call_env("13800000001", "17000000001"),
        [Expect(r"SET VARIABLE .*", ("200 result=1",), hangup_before_reply=True),
         SendLine("HANGUP")],
    )
    result = await peer.run("127.0.0.1", server.port)
    assert result.ok and result.server_closed
    await wait_for(lambda: len(store.attempts) == 1)
    assert store.attempts[0].reason.value == "bridged"


async def test_log_line_masks_numbers(
    server: FastAgiServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="privnum.route"):
        await place(server, call_env("13900000001", "17000000001"))
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("call "))
    assert "caller=139****0001" in line and "action=bridge" in line
    assert "13900000001" not in caplog.text and "13800000001" not in caplog.text


def test_a_recorded_bridge_names_its_recording_and_the_notice() -> None:
    from routing.model import Action, CallRequest, RouteDecision
    from routing.reasons import Reason
    from routing.recording import is_recording_id

    store = Store()
    handler = RouteHandler(store, store, lambda: NOW,
                           RouteOptions(max_call_seconds=900, notice_sound="rec-notice"))
    request = CallRequest(caller="+8613800000001", dialed="+8617000000001", uniqueid="u1",
                          linkedid="u1")
    bridge = RouteDecision(action=Action.BRIDGE, reason=Reason.BRIDGED, max_seconds=900,
                           dial_number="+8613900000001", present_number="+8617000000001",
                           record=True)
    first = handler.variables(bridge, request)
    second = handler.variables(bridge, request)
    assert first[cv.RECORD] == "1" and first[cv.NOTICE_SOUND] == "rec-notice"
    assert is_recording_id(first[cv.RECORD_ID])
    assert first[cv.RECORD_ID] != second[cv.RECORD_ID]  # one file per call
    reject = RouteDecision.reject(Reason.BINDING_EXPIRED, "+8617000000001")
    refused = handler.variables(replace(reject, record=True), request)
    assert (refused[cv.RECORD], refused[cv.RECORD_ID], refused[cv.NOTICE_SOUND]) == ("0", "", "")
