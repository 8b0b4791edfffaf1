"""Two privnum nodes behind the lab's Asterisk: the dialplan's FastAGI failover.

The lab's dialplan lists two FastAGI hosts (``AGI_PRIMARY``, ``AGI_SECONDARY``, tried in
that order). Node 1 (``privnum serve`` on the primary, with the one AMI listener this Asterisk
has) and node 2 (``privnum serve`` on the secondary, FastAGI only) share one PostgreSQL
database and one Redis. A merchant's call is routed by node 1; node 1 is killed (SIGKILL, a
crash); the next call is routed by node 2 and reaches the same buyer, with nothing to
configure and no state moved: every node reads the same stores.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agi import channel_vars as cv
from tests.e2e.ami import AmiClient
from tests.e2e.baresip import BaresipUA
from tests.e2e.conftest import BUYER, MERCHANT, RunningLab
from tests.e2e.privnum_service import PrivnumProcess, PrivnumStack, privnum_stack, tagged_cdr
from tests.e2e.test_scenarios import bridged_call, hang_up
from tests.pg import scratch_database

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

MERCHANT_2 = "13800000002"
H = cv.CDR_AMI_HEADERS


@pytest.fixture(scope="module")
def stack(asterisk_lab_running: RunningLab, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[PrivnumStack]:
    with scratch_database("e2e_fo") as url, privnum_stack(
            asterisk_lab_running, tmp_path_factory.mktemp("privnum-failover"), url) as st:
        yield st


@pytest.fixture(scope="module")
def node2(stack: PrivnumStack, asterisk_lab_running: RunningLab) -> Iterator[PrivnumProcess]:
    """Node 2: the same configuration on the secondary FastAGI address, AMI off (one AMI
    listener per Asterisk)."""
    host, port = asterisk_lab_running.agi[1]
    primary = asterisk_lab_running.agi[0]
    text = stack.config.read_text(encoding="utf-8")
    text = text.replace(f'host = "{primary[0]}"\nport = {primary[1]}',
                        f'host = "{host}"\nport = {port}')
    text = re.sub(r"(\[ami\]\nenabled = )true", r"\1false", text)
    assert f"port = {port}" in text and "enabled = false" in text
    config = stack.workdir / "node2.toml"
    config.write_text(text, encoding="utf-8")
    node = PrivnumProcess("privnum serve (node 2)", ["serve"], config,
                          stack.workdir / "node2.log", ["privnum serving FastAGI on"])
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _routed(log: str, binding_id: str) -> int:
    """Calls a node's log says it bridged on ``binding_id``."""
    return len(re.findall(rf"privnum\.route call .*action=bridge .*binding={binding_id}", log))


def _routed_soon(read: Callable[[], str], binding_id: str, timeout: float = 10.0) -> int:
    """:func:`_routed`, once the node has written its line: a service writes INFO lines in
    batches, up to ``log.flush_seconds`` after the call."""
    deadline = time.monotonic() + timeout
    while (found := _routed(read(), binding_id)) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_calls_move_to_the_surviving_node_when_one_is_killed(
    stack: PrivnumStack, node2: PrivnumProcess, asterisk_lab_running: RunningLab,
    ami: AmiClient, phones: Callable[..., BaresipUA]
) -> None:
    lab = asterisk_lab_running
    lab.cli("channel request hangup all")
    shop = stack.fresh_shop("fo", MERCHANT, MERCHANT_2)
    b = stack.bind(shop, "order-fo", MERCHANT, BUYER)
    merchant = phones("merchant", MERCHANT)
    buyer = phones("buyer", BUYER, auto_answer=True)
    node1_log = Path(stack.serve.log_file)
    mark = [0]

    # Both nodes up: the primary answers.
    bridged_call(lab, merchant, buyer, b.x_dialled, ami, mark)
    hang_up(merchant, buyer)
    first = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_BINDING]) == b.binding_id, after=mark[0])
    assert first["Disposition"] == "ANSWERED"
    assert _routed_soon(node1_log.read_text, b.binding_id) >= 1
    assert _routed(node2.log_since_start(), b.binding_id) == 0

    stack.serve.kill()  # node 1 crashes: its FastAGI port refuses from now on
    try:
        lab.cli("channel request hangup all")
        bridged_call(lab, merchant, buyer, b.x_dialled, ami, mark)
        hang_up(merchant, buyer)
        second = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_BINDING]) == b.binding_id,
                            after=mark[0])
    finally:
        stack.serve.start()  # the module's other state stays as it was
    # The same buyer answered, through node 2: the dialplan moved to the next host.
    assert second["Disposition"] == "ANSWERED"
    assert second[H[cv.CDR_REASON]] == "bridged"
    assert second["UniqueID"] != first["UniqueID"]
    # At least once: a harness retry (baresip crash) routes the retried call there too.
    assert _routed_soon(node2.log_since_start, b.binding_id) >= 1
