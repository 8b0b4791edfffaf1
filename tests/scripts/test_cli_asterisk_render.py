"""`privnum asterisk render`: the Asterisk configuration filled from the settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def render(tmp_path: Path, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PRIVNUM_")}
    base.update(PRIVNUM_DATA_DIR=str(tmp_path / "data"), **env)
    return subprocess.run([sys.executable, "-m", "scripts.cli", "asterisk", "render",
                           "--out", str(out)], env=base, capture_output=True, text=True,
                          timeout=60, check=False)


def test_settings_reach_the_rendered_files(tmp_path: Path) -> None:
    out = tmp_path / "conf"
    done = render(tmp_path, out, PRIVNUM_AMI__SECRET="s3cret-pass",
                  PRIVNUM_ASTERISK__FASTAGI_HOSTS='["10.0.0.5:4573","10.0.0.6:4573"]',
                  PRIVNUM_ASTERISK__TRUNK_HOST="sip.carrier.example:5060",
                  PRIVNUM_ASTERISK__SYSTEM_NAME="pbx-east")
    assert done.returncode == 0, done.stderr
    dialplan = (out / "extensions.conf").read_text()
    first, second = dialplan.index("agi://10.0.0.5:4573/route"), dialplan.index(
        "agi://10.0.0.6:4573/route")
    assert first < second  # failover order as configured
    assert "PJSIP/${PRIVNUM_DIAL_NUMBER}@privnum-trunk" in dialplan
    assert "secret=s3cret-pass" in (out / "manager.conf").read_text().splitlines()
    assert "sip.carrier.example" in (out / "pjsip.conf").read_text()
    assert "pbx-east" in (out / "asterisk.conf").read_text()
    assert {p.name for p in out.iterdir()} >= {"extensions.conf", "pjsip.conf", "manager.conf",
                                               "cdr_manager.conf", "cdr_custom.conf",
                                               "modules.conf"}


def test_the_default_fastagi_host_is_this_service(tmp_path: Path) -> None:
    out = tmp_path / "conf"
    done = render(tmp_path, out, PRIVNUM_AMI__SECRET="s3cret-pass", PRIVNUM_AGI__PORT="4600")
    assert done.returncode == 0, done.stderr
    assert "agi://127.0.0.1:4600/route" in (out / "extensions.conf").read_text()


@pytest.mark.parametrize(
    ("env", "message"),
    [({}, "set an AMI secret first"),
     ({"PRIVNUM_AMI__SECRET": "s3cret-pass", "PRIVNUM_ASTERISK__FASTAGI_HOSTS": '["nohost"]'},
      "FastAGI address must be host:port")],
)
def test_bad_settings_are_one_line(tmp_path: Path, env: dict[str, str], message: str) -> None:
    done = render(tmp_path, tmp_path / "conf", **env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and message in done.stderr
    assert not (tmp_path / "conf").exists()
