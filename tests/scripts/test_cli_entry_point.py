"""The installed ``privnum`` console script, run as a process: exit codes and one-line errors
exactly as a PBX admin sees them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PRIVNUM = Path(sys.executable).with_name("privnum")

pytestmark = pytest.mark.skipif(not PRIVNUM.exists(), reason="privnum console script not installed")


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PRIVNUM_")}
    base.update({"PRIVNUM_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200", **env})
    return subprocess.run([str(PRIVNUM), *args], capture_output=True, text=True, env=base,
                          timeout=120, check=False)


def _one_line(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], result.stderr


def test_embedded_default_end_to_end(tmp_path: Path) -> None:
    assert _run(tmp_path, "db", "upgrade").returncode == 0
    assert (tmp_path / "data" / "privnum.db").exists()
    assert _run(tmp_path, "keys", "generate", "--if-missing").returncode == 0
    enable = _run(tmp_path, "shop", "enable", "s1", "--main-account", "boss",
                  "--phone", "13800138000", "--agreement", "v1")
    assert enable.returncode == 0 and "+8613800138000" in enable.stdout
    _one_line(_run(tmp_path, "callers", "remove", "s1", "13800138000"), "cannot be removed")


def test_entry_point_errors_are_one_line(tmp_path: Path) -> None:
    _one_line(_run(tmp_path, "keys", "rotate"), "privnum keys generate")
    _one_line(_run(tmp_path, "shop", "show", PRIVNUM_DATABASE__POOL_SIZE="zero"),
              "invalid setting database.pool_size")
    _one_line(_run(tmp_path, "db", "upgrade",
                   PRIVNUM_DATABASE__URL="postgresql+psycopg://postgres@127.0.0.1:1/x"),
              "database unavailable")
    _one_line(_run(tmp_path, "shop", "show", PRIVNUM_CONFIG=str(tmp_path / "nope.toml")),
              "config file not found")
