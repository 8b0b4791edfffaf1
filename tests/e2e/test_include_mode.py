"""Include mode on the real lab: Debian's stock /etc/asterisk (the package's samples) with
privnum's parts ``#include``d as ``privnum asterisk render --mode include`` tells an admin to,
loaded by Asterisk 22 next to the stock configuration. ``privnum asterisk check`` finds it fits;
a merchant's call to X reaches the buyer through the included dialplan (real ``privnum serve``)
and its CDR reaches the call log over AMI through the included cdr_manager mappings."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from agi import channel_vars as cv
from scripts import asterisk_lab
from tests.e2e.baresip import BaresipUA
from tests.e2e.conftest import BUYER, MERCHANT, RunningLab
from tests.e2e.privnum_service import SYSTEM_NAME, PrivnumStack, privnum_stack, tagged_cdr
from tests.e2e.test_scenarios import bridged_call, hang_up
from tests.pg import scratch_database
from tests.scripts.cli_helpers import Cli

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

H = cv.CDR_AMI_HEADERS


@pytest.fixture(scope="module")
def include_lab(asterisk_lab_running: RunningLab) -> Iterator[RunningLab]:
    lab = asterisk_lab_running
    full = asterisk_lab.StartOptions(fastagi=tuple(f"{h}:{p}" for h, p in lab.agi),
                                     sip_port=lab.sip_port, ami_port=lab.ami_port)
    asterisk_lab.start(lab.lab, replace(full, mode="include"))
    try:
        yield lab
    finally:
        asterisk_lab.start(lab.lab, full)  # what the other modules of the session expect


@pytest.fixture(scope="module")
def stack(include_lab: RunningLab, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[PrivnumStack]:
    with scratch_database("e2e_incl") as url, privnum_stack(
            include_lab, tmp_path_factory.mktemp("privnum-include"), url) as st:
        yield st


def test_asterisk_loads_privnums_parts_next_to_the_stock_configuration(
        include_lab: RunningLab, tmp_path: Path) -> None:
    lab = include_lab
    etc = lab.root / "etc/asterisk"
    assert "#include extensions_privnum.conf" in (etc / "extensions.conf").read_text()
    assert (etc / "extensions.conf").stat().st_size > 30_000  # the stock dialplan is all there
    cli = Cli(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    check = cli("asterisk", "check", etc, env={
        "PRIVNUM_AMI__SECRET": asterisk_lab.LAB_AMI_SECRET,
        "PRIVNUM_AMI__PORT": str(lab.ami_port), "PRIVNUM_AGI__SYSTEM_NAME": SYSTEM_NAME,
        "PRIVNUM_ASTERISK__DIAL_TEMPLATE": "PJSIP/{number}"})
    assert check.exit_code == 0, check.stdout
    # Asterisk runs both: the stock demo dialplan and privnum's contexts, privnum's AMI user.
    assert "privnum-inbound" in lab.cli("dialplan show privnum-inbound")
    assert "'demo'" in lab.cli("dialplan show demo")
    user = lab.cli("manager show user privnum")
    assert set(re.search(r"read perm: (\S+)", user)[1].split(",")) == {"cdr", "system"}  # type: ignore[index]
    assert re.search(rf"System name:\s+{SYSTEM_NAME}$", lab.cli("core show settings"), re.M)


def test_a_call_routes_through_the_included_dialplan(
        stack: PrivnumStack, include_lab: RunningLab, phones: Callable[..., BaresipUA]) -> None:
    lab = include_lab
    lab.cli("channel request hangup all")
    shop = stack.fresh_shop("incl", MERCHANT, "13800000002")
    b = stack.bind(shop, "order-incl", MERCHANT, BUYER)
    merchant = phones("merchant", MERCHANT)
    buyer = phones("buyer", BUYER, auto_answer=True)
    with lab.ami() as ami:
        mark = [0]
        seen = bridged_call(lab, merchant, buyer, b.x_dialled, ami, mark)
        assert buyer.caller_id_seen(seen)[0] == b.x_dialled  # B sees X
        hang_up(merchant, buyer)
        cdr = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_BINDING]) == b.binding_id,
                         after=mark[0])
    assert cdr["Disposition"] == "ANSWERED" and cdr["DestinationContext"] == "privnum-bridge"
    # the answered call's own row: a harness retry may have left an earlier attempt's
    row, = stack.wait_rows("binding_id = %s AND uniqueid = %s", b.binding_id, cdr["UniqueID"])
    assert (row["outcome"], row["reason"], row["system_name"]) == ("answered", "bridged",
                                                                   SYSTEM_NAME)
    assert row["buyer_masked"] == "139****0001"
