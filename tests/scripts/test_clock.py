"""The service's clock (``scripts.clock``) and who may run on a test clock: only ``privnum
serve --allow-test-clock``; every other command, and ``serve`` without the flag, refuses with
one line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from routing.errors import InvalidInput
from scripts.clock import ShiftedClock, parse_clock, service_clock
from scripts.settings import Settings
from tests.scripts.cli_helpers import Cli, one_line_error


@pytest.fixture
def no_db(tmp_path: Path) -> Cli:
    """The CLI on an SQLite file nobody creates: every command here stops before a store."""
    return Cli(tmp_path / "data", f"sqlite+aiosqlite:///{tmp_path / 'data' / 'privnum.db'}")


REAL = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # a made-up "real now": nothing reads the host's


@pytest.mark.parametrize(("spec", "expected"), [
    ("2030-01-07T02:00:00Z", datetime(2030, 1, 7, 2, 0, tzinfo=UTC)),
    ("2030-01-07T10:00:00+08:00", datetime(2030, 1, 7, 2, 0, tzinfo=UTC)),
    (" 2030-01-07T02:00:00.5+00:00 ", datetime(2030, 1, 7, 2, 0, 0, 500_000, tzinfo=UTC)),
    ("+5h30m", timedelta(hours=5, minutes=30)),
    ("-90m", timedelta(minutes=-90)),
    ("+1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ("+3600.25s", timedelta(seconds=3600.25)),
    ("-0s", timedelta(0)),
])
def test_a_clock_is_an_instant_with_a_zone_or_a_signed_offset(
        spec: str, expected: datetime | timedelta) -> None:
    assert parse_clock(spec) == expected


@pytest.mark.parametrize(("spec", "says"), [
    ("2030-01-07T02:00:00", "no zone"),
    ("5h", "neither"),
    ("+", "neither"),
    ("+5x", "neither"),
    ("tomorrow", "neither"),
    ("+1h1d", "neither"),  # the units in their order
])
def test_anything_else_is_refused_with_examples(spec: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says) as caught:
        parse_clock(spec)
    assert "e.g." in str(caught.value)


@pytest.mark.parametrize(("spec", "offset"), [
    ("2026-03-01T15:00:00Z", timedelta(hours=3)),
    ("2026-02-28T12:00:00+00:00", timedelta(days=-1)),
    ("+2h", timedelta(hours=2)),
    ("-2h", timedelta(hours=-2)),
])
def test_the_service_clock_is_real_time_shifted_to_start_at_the_instant(
        spec: str, offset: timedelta) -> None:
    clock = service_clock(spec, REAL)
    assert clock.offset == offset
    # what the parent hands its worker processes names the very same clock
    assert service_clock(clock.spec, REAL + timedelta(seconds=7)).offset == offset


def test_the_shifted_clock_reads_utc_with_its_offset() -> None:
    clock = ShiftedClock(timedelta(days=365 * 10))
    assert clock().tzinfo is UTC
    assert clock() > datetime(2030, 1, 1, tzinfo=UTC)  # ten years past any run of this suite


def test_the_setting_is_checked_when_the_settings_are_read() -> None:
    assert Settings(testing={"clock": " +1h "}).testing.clock == "+1h"
    assert Settings().testing.clock == ""
    with pytest.raises(ValueError, match="no zone"):
        Settings(testing={"clock": "2030-01-07T02:00:00"})


@pytest.mark.parametrize("command", [
    ["serve"], ["serve", "--workers", "2"], ["agi"], ["api"], ["ami", "listen"],
    ["db", "upgrade"], ["shop", "show"], ["config", "show"], ["calls", "list", "--shop", "s"],
    ["bind", "--shop", "s", "--order", "o", "--caller", "13800000001", "--buyer",
     "13900000001"],
])
def test_every_command_but_serve_with_the_flag_refuses_a_test_clock(
        no_db: Cli, command: list[str]) -> None:
    result = no_db(*command, env={"PRIVNUM_TESTING__CLOCK": "+1h"})
    one_line_error(result, "testing.clock", "PRIVNUM_TESTING__CLOCK",
                   "privnum serve --allow-test-clock")


def test_a_test_clock_in_the_config_file_is_refused_too(no_db: Cli, tmp_path: Path) -> None:
    config = tmp_path / "privnum.toml"
    config.write_text('[testing]\nclock = "2030-01-07T02:00:00Z"\n', encoding="utf-8")
    one_line_error(no_db("--config", config, "shop", "show"), "testing.clock")


def test_a_malformed_test_clock_is_one_line_naming_the_variable(no_db: Cli) -> None:
    result = no_db("serve", "--allow-test-clock", env={"PRIVNUM_TESTING__CLOCK": "noon"})
    one_line_error(result, "testing.clock", "PRIVNUM_TESTING__CLOCK", "e.g.")
