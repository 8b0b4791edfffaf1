"""The CDR safety net on the README's configuration: ``privnum asterisk render`` and the
commands that read Asterisk's CSV agree on where it is by default; ``privnum cdr reconcile``
with nothing to read says so and fails; refused call attempts reach ``/metrics``."""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agi import channel_vars as cv
from api.metrics import Metrics
from binding_store import migrate
from binding_store.crypto import KeyRing
from routing.model import Action, CallAttempt
from routing.reasons import Reason
from scripts.call_path import route_stack
from scripts.part_config import default_csv_file
from scripts.settings import load_settings
from tests.scripts.cli_helpers import Cli, one_line_error
from tests.scripts.test_cli_asterisk_render import render
from tests.test_privacy import cdr_csv


def where_asterisk_writes(conf: Path) -> Path:
    """What Asterisk makes of the rendered files: cdr_custom writes each ``[mappings]`` file
    under ``<astlogdir>/cdr-custom/``."""
    astlogdir = re.search(r"^astlogdir => (\S+)$", (conf / "asterisk.conf").read_text(), re.M)
    mapping = re.search(r"^\[mappings\]\n(\S+) =>", (conf / "cdr_custom.conf").read_text(), re.M)
    assert astlogdir and mapping
    return Path(astlogdir[1]) / "cdr-custom" / mapping[1]


@pytest.mark.parametrize("log_dir", [None, "/srv/pbx/log"])
def test_render_and_the_readers_agree_on_the_csv_by_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_dir: str | None) -> None:
    env = {"PRIVNUM_AMI__SECRET": "s3cret-pass"}
    if log_dir:
        env["PRIVNUM_ASTERISK__LOG_DIR"] = log_dir
    done = render(tmp_path, tmp_path / "conf", **env)
    assert done.returncode == 0, done.stderr
    for key in [k for k in os.environ if k.startswith("PRIVNUM_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert default_csv_file(settings) == where_asterisk_writes(tmp_path / "conf")
    assert default_csv_file(settings).name == cv.CDR_CSV_FILE


@pytest.fixture
def migrated(lite: Cli) -> Cli:
    lite.ok("db", "upgrade")
    return lite


def test_reconcile_with_nothing_to_read_fails_with_one_line(migrated: Cli, tmp_path: Path
                                                             ) -> None:
    nowhere = {"PRIVNUM_ASTERISK__LOG_DIR": str(tmp_path / "no-asterisk-here")}
    one_line_error(migrated("cdr", "reconcile", env=nowhere), "nothing to reconcile from",
                   "no-asterisk-here/cdr-custom does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(migrated("cdr", "reconcile",
                            env={"PRIVNUM_CALL_LOG__CDR_CSV_DIR": str(empty)}),
                   f"{empty / cv.CDR_CSV_FILE} not found")


def test_reconcile_reads_the_csv_where_the_rendered_config_puts_it(migrated: Cli,
                                                                    tmp_path: Path) -> None:
    log_dir = tmp_path / "asterisk-log"
    (log_dir / "cdr-custom").mkdir(parents=True)
    cdr_csv(log_dir / "cdr-custom" / cv.CDR_CSV_FILE)  # two calls of today
    done = migrated("cdr", "reconcile", "--system-name", "pbx",
                    env={"PRIVNUM_ASTERISK__LOG_DIR": str(log_dir)})
    assert done.exit_code == 0, done.stderr
    assert "read 2 from " in done.stdout and "imported 2 call record(s)" in done.stdout


async def test_refused_call_attempts_are_counted_in_metrics(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'privnum.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    KeyRing.generate().save(tmp_path / "keys.json")
    settings = load_settings(data_dir=tmp_path)
    metrics = Metrics()
    now = datetime.now(UTC)
    good = CallAttempt(uniqueid="pbx-1", linkedid="pbx-1", at=now, caller_masked="138****0001",
                       caller_a="", virtual_x="+8617000000001", action=Action.REJECT,
                       reason=Reason.CALLER_NOT_AUTHORIZED, direction=None, binding_id="",
                       shop_id="", order_id="")
    async with route_stack(settings, on_refused=metrics.attempt_refused) as stack:
        await stack.attempts.record(replace(good, uniqueid="pbx-2", at=now.replace(tzinfo=None)))
        await stack.attempts.record(good)
    assert (stack.attempts.written, stack.attempts.refused) == (1, 1)
    assert "privnum_call_attempts_refused_total 1.0" in metrics.render().decode()
