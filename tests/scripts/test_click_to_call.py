"""Click-to-call's Originate: A's phone is rung showing X, and the call enters the dialplan
through ``privnum-click`` carrying A (pure unit: the AMI side is a recording stand-in; the real
call is in tests/e2e/test_api_flow.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from agi import channel_vars as cv
from routing.errors import AmiUnavailable, ClickToCallUnavailable
from scripts.http_service import click_to_call as AmiClickToCall
from scripts.settings import Settings


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = fail

    async def originate(self, channel: str, *, context: str, exten: str, priority: int = 1,
                        caller_id: str = "", timeout_ms: int = 30_000,
                        variables: Mapping[str, str] | None = None) -> str:
        if self.fail:
            raise AmiUnavailable("not connected to Asterisk AMI")
        self.sent.append({"channel": channel, "context": context, "exten": exten,
                          "caller_id": caller_id, "timeout_ms": timeout_ms,
                          "variables": dict(variables or {})})
        return "action-1"


@pytest.mark.parametrize(("dial_format", "a", "x"), [
    ("national", "13800000001", "17000000001"),
    ("e164", "+8613800000001", "+8617000000001"),
])
async def test_a_is_rung_showing_x_and_routed_as_a(tmp_path: Path, dial_format: str, a: str,
                                                   x: str) -> None:
    settings = Settings(data_dir=tmp_path, agi={"dial_format": dial_format},
                        asterisk={"dial_template": "PJSIP/{number}@trunk"})
    recorder = Recorder()
    ref = await AmiClickToCall(recorder, settings).click_to_call(
        caller_a="+8613800000001", virtual_x="+8617000000001", binding_id="bnd-1",
        timeout_seconds=30)
    assert ref == "action-1"
    assert recorder.sent == [{
        "channel": f"PJSIP/{a}@trunk",
        "context": "privnum-click",
        "exten": x,
        "caller_id": f'"{x}" <{x}>',  # what A's phone shows: X, never A's own number
        "timeout_ms": 30_000,
        "variables": {cv.CLICK_CALLER: a, cv.CLICK_BINDING: "bnd-1"},
    }]


async def test_ami_down_is_click_to_call_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ClickToCallUnavailable):
        await AmiClickToCall(Recorder(fail=True), Settings(data_dir=tmp_path)).click_to_call(
            caller_a="+8613800000001", virtual_x="+8617000000001", binding_id="b",
            timeout_seconds=30)


async def test_an_extension_binding_passes_its_extension_for_dtmf_and_shows_x(
        tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, asterisk={"dial_template": "PJSIP/{number}"})
    recorder = Recorder()
    await AmiClickToCall(recorder, settings).click_to_call(
        caller_a="+8613800000001", virtual_x="+8617100000001", binding_id="bnd-2",
        timeout_seconds=30, extension="0042")
    (sent,) = recorder.sent
    # X alone (A's phone shows X alone); the dialplan sends the extension as DTMF after
    # privnum's prompt answers.
    assert (sent["exten"], sent["caller_id"]) == ("17100000001", '"17100000001" <17100000001>')
    assert sent["variables"] == {cv.CLICK_CALLER: "13800000001", cv.CLICK_BINDING: "bnd-2",
                                 cv.CLICK_EXT: "0042"}
