"""``privnum bind | switch-caller | release`` end to end on the embedded default (SQLite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRIVNUM_DATA_DIR": str(tmp_path / "data"), "PRIVNUM_REDIS__URL": ""}
    env.pop("PRIVNUM_CONFIG", None)
    return subprocess.run([sys.executable, "-c", "from scripts.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def test_bind_switch_release(tmp_path: Path) -> None:
    pool = tmp_path / "pool.csv"
    pool.write_text("number,region\n+8617000000001,BJ\n", encoding="utf-8")
    for setup in (["db", "upgrade"], ["keys", "generate"],
                  ["shop", "enable", "s1", "--main-account", "m1", "--phone", "13800000001",
                   "--agreement", "v1"],
                  ["accounts", "add", "s1", "sub1", "--phone", "13800000002", "--reviewed"],
                  ["callers", "add", "s1", "13800000002"], ["pool", "import", str(pool), "-q"]):
        done = _cli(tmp_path, *setup)
        assert done.returncode == 0, done.stderr
    bound = _cli(tmp_path, "bind", "--shop", "s1", "--order", "o1", "--caller", "13800000001",
                 "--buyer", "139 1234 5678")
    assert bound.returncode == 0, bound.stderr
    assert "+8617000000001" in bound.stdout and "139****5678" in bound.stdout
    assert "13912345678" not in bound.stdout
    binding = bound.stdout.split("binding ")[1].split()[0]
    switched = _cli(tmp_path, "switch-caller", binding, "--caller", "13800000002")
    assert switched.returncode == 0 and "same X" in switched.stdout
    new = switched.stdout.split("binding ")[1].split()[0]
    released = _cli(tmp_path, "release", new)
    assert released.returncode == 0 and "released" in released.stdout
    for bad, message in ((["bind", "--shop", "s1", "--order", "o2", "--caller", "13800000009",
                           "--buyer", "13912345678"], "not an approved caller"),
                         (["bind", "--shop", "s1", "--order", "o2", "--caller", "13800000001",
                           "--buyer", "13912345678", "--ttl", "5"], "at least 60"),
                         (["release", "nope"], "not found"),
                         # the pool's one X was just released from this caller: it cools down
                         (["bind", "--shop", "s1", "--order", "o3", "--caller", "13800000002",
                           "--buyer", "13912345670"], "is in its cool-down after a recent"),
                         (["index", "rebuild"], "no Redis configured")):
        failed = _cli(tmp_path, *bad)
        assert failed.returncode != 0 and message in failed.stderr
        assert "Traceback" not in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
