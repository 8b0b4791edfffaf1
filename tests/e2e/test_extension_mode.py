"""Extension mode on the real lab: real ``privnum serve`` (PostgreSQL + Redis), real Asterisk
22. One extension number X (4-digit extensions) holds several bindings of the same merchant;
the caller side is an AMI-originated Local channel whose first half sends the extension as
DTMF (``SendDTMF``) into the privnum dialplan's ``Read``, and the buyer's phone is a baresip
UA where a bridge must really ring.

Scenarios: merchant call with the extension as DTMF (the right buyer's phone rings); a wrong
extension then the right one; no extension at all (three time-outs, then
``extension_timeout``); a buyer callback straight to the shop, then, once the buyer holds a
second binding on the same X, with a prompt; X immediately followed by the extension in the
dialled number (no prompt); click-to-call of an extension binding (the daemon's
``AmiClickToCall``: A's phone rings, and once privnum's prompt answers the dialplan sends the
extension as DTMF; the right buyer's phone rings). The CDR records the extension (``PnExt``).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pytest

from agi import channel_vars as cv
from agi.ami_click import AmiClickToCall
from tests.e2e.ami import AmiClient, Event
from tests.e2e.conftest import BUYER, MERCHANT, RunningLab
from tests.e2e.privnum_service import (
    PrivnumStack,
    ServiceError,
    Shop,
    originate_local,
    privnum_stack,
    tagged_cdr,
)
from tests.pg import scratch_database

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

MERCHANT_2 = "13800000002"
BUYER_2 = "13900000002"
X_EXT = "17100000001"  # national form; imported as +8617100000001
H = cv.CDR_AMI_HEADERS
_ISSUED = re.compile(r"dial (\+\d+) ext\. (\d+) from .*\n\s+binding (\w+)")


@dataclass(frozen=True)
class ExtBinding:
    binding_id: str
    x: str
    extension: str


@pytest.fixture(scope="module")
def stack(asterisk_lab_running: RunningLab, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[PrivnumStack]:
    work = tmp_path_factory.mktemp("privnum-ext")
    with scratch_database("e2e_ext") as url, privnum_stack(asterisk_lab_running, work,
                                                           url) as st:
        st.serve.stop()
        with st.config.open("a", encoding="utf-8") as fh:
            fh.write("\n[extensions]\ndigit_timeout_seconds = 3\nmax_tries = 3\n"
                     "directory_refresh_seconds = 0\n")
        pool = work / "pool-ext.csv"
        pool.write_text(f"number,region\n{X_EXT},ext\n", encoding="utf-8")
        st.cli("pool", "import", "-q", str(pool))
        out = st.cli("pool", "mode", X_EXT, "--extension", "4")
        assert "extension, 4-digit extensions" in out, out
        st.serve.start()
        yield st


@pytest.fixture(autouse=True)
def known_state(stack: PrivnumStack, asterisk_lab_running: RunningLab) -> Iterator[None]:
    asterisk_lab_running.cli("channel request hangup all")
    stack.serve.start()
    yield
    asterisk_lab_running.cli("channel request hangup all")


def bind_ext(stack: PrivnumStack, shop: Shop, caller: str, buyer: str) -> ExtBinding:
    out = stack.cli("bind", "--shop", shop.shop_id, "--order", f"o-{secrets.token_hex(3)}",
                    "--caller", caller, "--buyer", buyer, "--mode", "extension")
    m = _ISSUED.search(out)
    assert m, out
    assert f"shown as 171 0000 0001 ext. {m[2]}" in out and f"dial string {X_EXT},{m[2]}" in out
    return ExtBinding(binding_id=m[3], x=m[1], extension=m[2])


def send_dtmf_call(ami: AmiClient, dialled: str, caller: str, dtmf: str) -> None:
    """``caller`` dials ``dialled``; once the privnum dialplan answers to ask for the
    extension, the caller's side plays ``dtmf`` (``w`` = half a second's pause) and then
    stays on the line ten more seconds."""
    action_id = f"orig-{secrets.token_hex(4)}"
    ami.send({"Action": "Originate", "ActionID": action_id,
              "Channel": f"Local/{dialled}@privnum-inbound", "Application": "SendDTMF",
              "Data": dtmf + "w" * 20, "CallerID": f'"{caller}" <{caller}>',
              "Timeout": "30000", "Async": "true"})
    resp = ami.wait(lambda m: m.get("ActionID") == action_id, 10, responses=True)
    if resp.get("Response") != "Success":
        raise ServiceError(f"Originate refused: {resp}")


def decided(ami: AmiClient, mark: int, x: str, timeout: float = 40.0) -> Event:
    return tagged_cdr(ami, lambda e: e.get(H[cv.CDR_X]) == x, after=mark, timeout=timeout)


@pytest.fixture(scope="module")
def shop(stack: PrivnumStack) -> Shop:
    return stack.fresh_shop("ext", MERCHANT, MERCHANT_2)


def test_merchant_sends_the_extension_as_dtmf_and_the_right_buyer_rings(
        stack: PrivnumStack, shop: Shop, ami: AmiClient, phones: object) -> None:
    other = bind_ext(stack, shop, MERCHANT, BUYER_2)
    mine = bind_ext(stack, shop, MERCHANT, BUYER)
    assert other.x == mine.x == "+86" + X_EXT and other.extension != mine.extension
    buyer = phones("buyer", BUYER, auto_answer=True)  # type: ignore[operator]
    mark = ami.mark()
    send_dtmf_call(ami, X_EXT, MERCHANT, "ww" + mine.extension)
    buyer.wait_for({"CALL_ESTABLISHED"}, timeout=20)
    cdr = decided(ami, mark, mine.x)
    assert (cdr[H[cv.CDR_REASON]], cdr[H[cv.CDR_BINDING]], cdr[H[cv.CDR_EXT]]) == (
        "bridged", mine.binding_id, mine.extension)
    assert cdr[H[cv.CDR_DIRECTION]] == "merchant"


def test_wrong_extension_then_the_right_one(stack: PrivnumStack, shop: Shop,
                                            ami: AmiClient) -> None:
    mine = bind_ext(stack, shop, MERCHANT, BUYER)
    wrong = "9999" if mine.extension != "9999" else "9998"
    mark = ami.mark()
    send_dtmf_call(ami, X_EXT, MERCHANT, "ww" + wrong + "w" * 8 + mine.extension)
    cdr = decided(ami, mark, mine.x)
    assert (cdr[H[cv.CDR_REASON]], cdr[H[cv.CDR_BINDING]], cdr[H[cv.CDR_EXT]]) == (
        "bridged", mine.binding_id, mine.extension)


def test_no_extension_times_out_after_three_prompts(stack: PrivnumStack, shop: Shop,
                                                     ami: AmiClient) -> None:
    mine = bind_ext(stack, shop, MERCHANT, BUYER)
    mark = ami.mark()
    originate_local(ami, X_EXT, MERCHANT, wait_seconds=40)
    cdr = decided(ami, mark, mine.x, timeout=60)
    assert (cdr[H[cv.CDR_REASON]], cdr[H[cv.CDR_EXT]]) == ("extension_timeout", "")
    assert cdr.get("LastApplication") == "Hangup" and cdr.get("LastData") == "102"


def test_three_wrong_extensions_are_refused(stack: PrivnumStack, shop: Shop,
                                            ami: AmiClient) -> None:
    mine = bind_ext(stack, shop, MERCHANT, BUYER)
    wrong = "9999" if mine.extension != "9999" else "9998"
    mark = ami.mark()
    send_dtmf_call(ami, X_EXT, MERCHANT, "ww" + ("w" * 8).join([wrong] * 3))
    cdr = decided(ami, mark, mine.x, timeout=60)
    assert (cdr[H[cv.CDR_REASON]], cdr[H[cv.CDR_EXT]]) == ("extension_invalid", wrong)
    assert cdr.get("LastData") == "28"


def test_x_followed_by_the_extension_routes_without_a_prompt(stack: PrivnumStack, shop: Shop,
                                                             ami: AmiClient) -> None:
    mine = bind_ext(stack, shop, MERCHANT, BUYER)
    mark = ami.mark()
    originate_local(ami, X_EXT + mine.extension, MERCHANT, wait_seconds=8)
    cdr = decided(ami, mark, mine.x)
    assert (cdr[H[cv.CDR_REASON]], cdr[H[cv.CDR_BINDING]], cdr[H[cv.CDR_EXT]]) == (
        "bridged", mine.binding_id, mine.extension)


def test_buyer_callback_without_then_with_a_prompt(stack: PrivnumStack, ami: AmiClient
                                                   ) -> None:
    # A buyer of their own (a stranger to the other scenarios' bindings on X).
    caller_b = "13900000077"
    shop = stack.fresh_shop("extcb", MERCHANT, MERCHANT_2)
    first = bind_ext(stack, shop, MERCHANT, caller_b)
    mark = ami.mark()
    originate_local(ami, X_EXT, caller_b, wait_seconds=8)  # sends no digits: no prompt needed
    cdr = decided(ami, mark, first.x)
    assert (cdr[H[cv.CDR_REASON]], cdr[H[cv.CDR_DIRECTION]], cdr[H[cv.CDR_BINDING]],
            cdr[H[cv.CDR_EXT]]) == ("bridged", "callback", first.binding_id, first.extension)

    second = bind_ext(stack, shop, MERCHANT, caller_b)
    mark = ami.mark()
    send_dtmf_call(ami, X_EXT, caller_b, "ww" + second.extension)
    cdr = decided(ami, mark, second.x)
    assert (cdr[H[cv.CDR_REASON]], cdr[H[cv.CDR_DIRECTION]], cdr[H[cv.CDR_BINDING]],
            cdr[H[cv.CDR_EXT]]) == ("bridged", "callback", second.binding_id, second.extension)


class LabOriginator:
    """``routing.cdr_ports.Originator`` over the test's AMI connection (this stack runs no
    HTTP API): the Originate is the one the daemon's click-to-call builds."""

    def __init__(self, ami: AmiClient) -> None:
        self._ami = ami

    async def originate(self, channel: str, *, context: str, exten: str, priority: int = 1,
                        caller_id: str = "", timeout_ms: int = 30_000,
                        variables: Mapping[str, str] | None = None) -> str:
        action_id = f"click-{secrets.token_hex(4)}"
        self._ami.send({
            "Action": "Originate", "ActionID": action_id, "Channel": channel,
            "Context": context, "Exten": exten, "Priority": str(priority),
            "CallerID": caller_id, "Timeout": str(timeout_ms), "Async": "true",
            "Variable": ",".join(f"{k}={v}" for k, v in (variables or {}).items())})
        resp = self._ami.wait(lambda m: m.get("ActionID") == action_id, 10, responses=True)
        if resp.get("Response") != "Success":
            raise ServiceError(f"Originate refused: {resp}")
        return action_id


def test_click_to_call_sends_the_extension_as_dtmf_after_answer(
        stack: PrivnumStack, shop: Shop, ami: AmiClient, phones: object) -> None:
    other = bind_ext(stack, shop, MERCHANT, BUYER_2)
    mine = bind_ext(stack, shop, MERCHANT, BUYER)
    assert other.extension != mine.extension
    merchant = phones("merchant-click", MERCHANT, auto_answer=True)  # type: ignore[operator]
    buyer = phones("buyer-click", BUYER, auto_answer=True)  # type: ignore[operator]
    click = AmiClickToCall(LabOriginator(ami), dial_template="PJSIP/{number}",
                           national_format=True)
    mark = ami.mark()
    asyncio.run(click.click_to_call(caller_a="+86" + MERCHANT, virtual_x=mine.x,
                                    binding_id=mine.binding_id, timeout_seconds=20,
                                    extension=mine.extension))
    merchant.wait_for({"CALL_ESTABLISHED"}, timeout=20)
    # The far end (privnum's prompt for the extension) received the digits: the call was
    # routed on (X, extension) to this binding's buyer, whose phone rings and answers.
    buyer.wait_for({"CALL_ESTABLISHED"}, timeout=30)
    buyer.hangup()  # end the call: its CDR follows
    cdr = decided(ami, mark, mine.x)
    assert (cdr[H[cv.CDR_REASON]], cdr[H[cv.CDR_BINDING]], cdr[H[cv.CDR_EXT]],
            cdr[H[cv.CDR_DIRECTION]]) == ("bridged", mine.binding_id, mine.extension,
                                          "merchant")
