"""AMI reconnects: the back-off schedule (pure) and the log of an outage (a fake AMI server
over a real socket): one line when it starts, one when it ends, whatever the attempts."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable

import pytest

from agi.ami_backoff import Backoff, LinkState
from agi.ami_listener import AmiListener, AmiListenerConfig
from tests.agi.fake_ami import FakeAmi
from tests.agi.test_ami_listener import SlowSink


@pytest.mark.parametrize(("initial", "cap"), [(2.0, 60.0), (0.5, 0.5), (1.0, 7.0), (5.0, 1.0)])
@pytest.mark.parametrize("seed", [0, 1, 42])
def test_delays_double_with_jitter_up_to_the_cap(initial: float, cap: float, seed: int) -> None:
    backoff = Backoff(initial, cap, random.Random(seed))
    ceiling = max(cap, initial)
    steps = [min(ceiling, initial * 2**n) for n in range(12)]
    delays = [backoff.next() for _ in steps]
    for step, delay in zip(steps, delays, strict=True):
        assert step / 2 <= delay <= step <= ceiling
    assert len(set(delays)) > 1  # jittered, not a fixed beat
    backoff.reset()
    assert initial / 2 <= backoff.next() <= initial


def test_the_extremes_of_the_jitter_stay_in_the_step() -> None:
    class Fixed(random.Random):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def random(self) -> float:
            return self.value

    assert Backoff(2.0, 60.0, Fixed(0.0)).next() == 1.0
    assert Backoff(2.0, 60.0, Fixed(0.999999)).next() == pytest.approx(2.0, rel=1e-5)


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.privnum.link")
    caplog.set_level(logging.INFO, logger=logger.name)
    clock = iter(range(100)).__next__
    link = LinkState("pbx:5038", logger, clock=lambda: float(clock()))
    for _ in range(50):
        link.failed("Connection refused")
    link.up()
    link.lost("closed by the peer")
    link.lost("closed by the peer")
    for _ in range(5):
        link.failed("Connection refused")
    link.up()
    assert [r.getMessage() for r in caplog.records] == [
        "AMI pbx:5038 not available: Connection refused; retrying with back-off (logged "
        "again when it is back)",
        "AMI connected to pbx:5038 after 50 failed attempt(s)",
        "AMI connection to pbx:5038 lost (closed by the peer); reconnecting with back-off",
        "AMI connected to pbx:5038 again after 5 failed attempt(s), 1 s down",
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110 - state lives in the listener's tasks
            await asyncio.sleep(0.01)


async def test_the_listener_backs_off_and_logs_each_change_once(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="privnum.ami")
    port = _free_port()  # nothing listens yet: Asterisk is down
    config = AmiListenerConfig(port=port, secret="s3cret", reconnect_delay=0.01,
                               reconnect_max_delay=0.05, ping_interval=30, login_timeout=2.0)
    listener = AmiListener(config, SlowSink())
    task = asyncio.create_task(listener.run())
    await _until(lambda: listener.stats.connect_failures >= 8)
    server = FakeAmi(secret="s3cret")
    await server.start(port)  # Asterisk is back
    await _until(listener.connected.is_set)
    server.drop()  # and gone again, for a while
    await server.close()
    failures = listener.stats.connect_failures
    await _until(lambda: listener.stats.connect_failures >= failures + 5)
    server = FakeAmi(secret="s3cret")
    await server.start(port)
    await _until(lambda: listener.stats.connects == 2)
    await listener.stop()
    await task
    await server.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "privnum.ami"]
    assert len([m for m in lines if "not available" in m]) == 1
    assert len([m for m in lines if "lost" in m]) == 1
    assert len([m for m in lines if m.startswith("AMI connected to")]) == 2
    assert listener.stats.connect_failures >= 13
