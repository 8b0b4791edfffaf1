"""Usage mistakes are one clear line on stderr with a pointer to --help, exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["bind", "--shop", "s1"],
         "missing --order, --caller, --buyer (or --file for many orders)"),
        (["nosuch"], "No such command 'nosuch'. (see 'privnum --help')"),
        (["bind", "--ttl", "abc"], "Invalid value for '--ttl'"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], expected: str) -> None:
    done = subprocess.run([sys.executable, "-m", "scripts.cli", *args], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]


def test_a_bare_group_shows_its_help() -> None:
    done = subprocess.run([sys.executable, "-m", "scripts.cli", "pool"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "import" in done.stdout and "error" not in done.stderr
