"""``privnum serve --allow-test-clock`` as a real process: the call path decides by the clock
it was given (quiet hours here), in the serving process and in its worker processes alike;
without the flag it does not start.

The instants are chosen from the real time in the shop's zone (the next 03:00 and the next
12:00, both within a day; the binding lives two days), so the outcome is the same on any date
and at any hour, and a few seconds between this test's clock and the service's change nothing.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agi import channel_vars as cv
from routing.reasons import Reason
from tests.agi.asterisk_parse import answer_variables
from tests.agi.fake_asterisk import ANSWER_STEPS, FakeAsterisk, SendLine
from tests.scripts.test_serve_process import (
    BUYER,
    MAIN,
    PRIVNUM,
    X,
    call_env,
    cli,
    env,  # noqa: F401 - fixture
)

SHANGHAI = ZoneInfo("Asia/Shanghai")  # a shop's zone when it sets none
WINDOW = "08:00-21:00"


def next_local(hour: int, zone: ZoneInfo) -> str:
    """The next ``hour``:00 in ``zone`` (within a day), as an ISO instant in UTC."""
    now = datetime.now(UTC).astimezone(zone)
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if at <= now:
        at += timedelta(days=1)
    return at.astimezone(UTC).isoformat()


@pytest.fixture
def quiet_shop(env: dict[str, str], tmp_path: Path) -> dict[str, str]:  # noqa: F811
    """A shop whose merchant calls are permitted 08:00-21:00 only; one binding on X that
    lives two days."""
    cli(env, "db", "upgrade")
    cli(env, "keys", "generate")
    cli(env, "shop", "enable", "shop1", "--main-account", "main1", "--phone", MAIN,
        "--agreement", "v1")
    cli(env, "shop", "rules", "shop1", "--merchant-window", WINDOW)
    pool = tmp_path / "pool.csv"
    pool.write_text(f"number,region\n{X},bj\n", encoding="utf-8")
    cli(env, "pool", "import", str(pool), "--quiet")
    cli(env, "bind", "--shop", "shop1", "--order", "o1", "--caller", MAIN, "--buyer", BUYER,
        "--ttl", str(2 * 86_400))
    return env


def serving(base: dict[str, str], clock: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([*PRIVNUM, "serve", "--allow-test-clock", *args],
                            env={**base, "PRIVNUM_TESTING__CLOCK": clock},
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # bounded by the suite's per-test timeout
        seen.append(line)
        if "serving FastAGI" in line:
            return proc, "".join(seen)
    pytest.fail(f"privnum serve did not start (exit {proc.wait()}): {''.join(seen)[-2000:]}")


def stopped(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


async def merchant_call(base: dict[str, str], uniqueid: str) -> dict[str, str]:
    port = int(base["PRIVNUM_AGI__PORT"])
    done = await FakeAsterisk(call_env(MAIN, uniqueid), [*ANSWER_STEPS, SendLine("HANGUP")]
                              ).run("127.0.0.1", port)
    return answer_variables(done.commands)


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-process", "workers"])
async def test_the_call_path_decides_quiet_hours_by_the_clock_it_was_given(
        quiet_shop: dict[str, str], workers: list[str]) -> None:
    quiet = next_local(3, SHANGHAI)
    proc, log = serving(quiet_shop, quiet, *workers)
    try:
        assert "TEST CLOCK" in log and quiet[:13] in log  # says so, with the time it runs at
        answers = [await merchant_call(quiet_shop, f"q{i}") for i in range(4)]
    finally:
        stopped(proc)
    assert {(a[cv.ACTION], a[cv.REASON]) for a in answers} == {
        (cv.ACTION_REJECT, Reason.QUIET_HOURS.value)}

    proc, _ = serving(quiet_shop, next_local(12, SHANGHAI), *workers)
    try:
        answer = await merchant_call(quiet_shop, "d1")
    finally:
        stopped(proc)
    assert (answer[cv.ACTION], answer[cv.REASON]) == (cv.ACTION_BRIDGE, "bridged")


def test_serve_without_the_flag_refuses_a_test_clock(env: dict[str, str]) -> None:  # noqa: F811
    done = subprocess.run([*PRIVNUM, "serve"], env={**env, "PRIVNUM_TESTING__CLOCK": "+1h"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "--allow-test-clock" in done.stderr and "Traceback" not in done.stderr
    assert "serving" not in done.stderr
