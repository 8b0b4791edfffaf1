"""The systemd units in packaging/systemd: they pass ``systemd-analyze verify`` with no warning
at all (a misspelt hardening option is only a warning there), run commands privnum has, keep
the drain on SIGTERM and the state directory, and keep their hardening."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.settings_platform import ApiSettings
from scripts.settings_telephony import AgiSettings

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "packaging" / "systemd"
INSTALLED = "/opt/privnum/bin/privnum"
PRIVNUM = Path(sys.executable).with_name("privnum")
ANALYZE = shutil.which("systemd-analyze")

HARDENING = ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
             "PrivateDevices=yes", "CapabilityBoundingSet=", "RestrictAddressFamilies=AF_UNIX "
             "AF_INET AF_INET6", "SystemCallFilter=@system-service", "UMask=0077",
             "StateDirectory=privnum", "User=privnum")


def _unit(name: str) -> str:
    return (UNITS / name).read_text(encoding="utf-8")


def _exec(unit: str) -> list[str]:
    found = re.search(r"^ExecStart=(.+)$", unit, re.M)
    assert found, unit
    return found[1].split()


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed and could not be "
                    "(scripts/run-tests installs Debian's systemd package when run as root)")
def test_units_pass_systemd_analyze_verify_without_a_warning(tmp_path: Path) -> None:
    assert PRIVNUM.exists(), "the privnum console script is installed with the project"
    names = sorted(p.name for p in UNITS.iterdir())
    assert names == ["privnum-purge.service", "privnum-purge.timer", "privnum.service"]
    for name in names:
        # verify checks that ExecStart exists: point it at this venv's privnum.
        (tmp_path / name).write_text(_unit(name).replace(INSTALLED, str(PRIVNUM)))
    done = subprocess.run([str(ANALYZE), "verify", "--man=no", *names], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout + done.stderr == ""


@pytest.mark.parametrize("name", ["privnum.service", "privnum-purge.service"])
def test_units_run_commands_privnum_has(name: str) -> None:
    command = _exec(_unit(name))
    assert command[0] == INSTALLED
    done = subprocess.run([str(PRIVNUM), *command[1:], "--help"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    for option in HARDENING:
        assert re.search(rf"^{re.escape(option)}$", _unit(name), re.M), (name, option)


def test_serve_drains_on_sigterm_within_the_stop_timeout() -> None:
    unit = _unit("privnum.service")
    assert re.search(r"^KillSignal=SIGTERM$", unit, re.M)
    assert re.search(r"^KillMode=mixed$", unit, re.M)  # the drain first, SIGKILL only after
    stop = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)[1])  # type: ignore[index]
    drain = AgiSettings().shutdown_grace_seconds + ApiSettings().body_timeout_seconds
    assert stop > drain
