"""``privnum serve --workers 2`` on the real lab: the dialplan's calls still route when two
call-path processes share the FastAGI port, and SIGTERM stops them all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agi import channel_vars as cv
from tests.e2e.ami import AmiClient
from tests.e2e.conftest import BUYER, MERCHANT, RunningLab
from tests.e2e.privnum_service import PrivnumStack, originate_local, tagged_cdr
from tests.pg import scratch_database

# Start-up of three processes on a loaded lab host, a module-scoped stack torn down last.
pytestmark = [pytest.mark.asterisk, pytest.mark.slow, pytest.mark.timeout(600)]

MERCHANT_2 = "13800000002"
STRANGER = "13700000009"
H = cv.CDR_AMI_HEADERS
CALLS = 6
STARTUP_SECONDS = 180.0


@pytest.fixture(scope="module")
def stack(asterisk_lab_running: RunningLab, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[PrivnumStack]:
    with scratch_database("e2e_workers") as url:
        st = PrivnumStack(asterisk_lab_running, tmp_path_factory.mktemp("privnum-workers"), url)
        st.serve.args = ["serve", "--workers", "2"]
        st.serve.ready_lines = ["agi-worker-1 (pid", "agi-worker-2 (pid", "AMI connected to"]
        try:
            st.prepare()
            # Three Python processes start (and import their stores) instead of one.
            st.serve.start(timeout=STARTUP_SECONDS)
            yield st
        finally:
            st.close()


@pytest.fixture
def ami(asterisk_lab_running: RunningLab) -> Iterator[AmiClient]:
    asterisk_lab_running.cli("channel request hangup all")
    with asterisk_lab_running.ami() as client:
        yield client
    asterisk_lab_running.cli("channel request hangup all")


def test_calls_route_through_two_workers_and_sigterm_stops_them(
        stack: PrivnumStack, ami: AmiClient) -> None:
    shop = stack.fresh_shop("w", MERCHANT, MERCHANT_2)
    b = stack.bind(shop, "order-w", MERCHANT, BUYER)
    mark = ami.mark()
    for _ in range(CALLS):
        originate_local(ami, b.x_dialled, MERCHANT, wait_seconds=3)
    originate_local(ami, b.x_dialled, STRANGER, wait_seconds=6)
    bridged: dict[str, dict[str, str]] = {}
    while len(bridged) < CALLS:
        cdr = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_REASON]) == "bridged"
                         and e.get("UniqueID") not in bridged, after=mark, timeout=30)
        bridged[cdr["UniqueID"]] = dict(cdr)
    assert all(c[H[cv.CDR_X]] == b.x for c in bridged.values())
    rejected = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_REASON]) == "caller_not_authorized",
                          after=mark, timeout=30)
    assert rejected["DestinationChannel"] == ""
    log = stack.serve.log_since_start()
    assert log.count("serving FastAGI on") >= 2  # both workers listen on the lab's port
    assert stack.serve.stop() == 0
    log = stack.serve.log_since_start()
    assert log.count("agi server stopped") == 2
    assert BUYER not in log
