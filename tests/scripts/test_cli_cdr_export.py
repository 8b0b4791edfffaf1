"""``privnum cdr export``: progress, and bad input refused with one clear line (no traceback,
no file left behind) before the database is touched."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scripts import cdr_export, cli_cdr
from scripts.cli import app
from scripts.cli_support import utc_now
from tests.fixtures.ami.scenario import ALL_CALLS, FORBIDDEN, migrated_call_log

DAY = ("--from", "2026-11-28", "--to", "2026-11-29")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = migrated_call_log(tmp_path / "cli.db")
    monkeypatch.setenv("PRIVNUM_DATABASE__URL", url)
    monkeypatch.setenv("PRIVNUM_DATA_DIR", str(tmp_path))
    # The recorded calls have fixed dates: a retention of a century keeps them exportable
    # whatever today's date is.
    monkeypatch.setenv("PRIVNUM_CALL_LOG__RETENTION_DAYS", "36500")
    out = tmp_path / "out"
    out.mkdir()
    return out


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["cdr", "export", *args])


def _one_line_error(result: Any, needle: str, code: int = 1) -> None:
    lines = result.output.strip().splitlines()
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_progress_lines_and_summary_when_not_a_terminal(
        env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cdr_export, "PROGRESS_EVERY", 1)
    monkeypatch.setattr(cli_cdr, "PROGRESS_LINE_EVERY", 2)
    out = env / "cdrs.csv"
    result = _run(*DAY, "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "exported 2 rows", "exported 4 rows", "exported 6 rows",
        f"{ALL_CALLS} rows -> {out} (+ cdrs.csv.manifest.json)"]
    assert all(line.endswith(" rows/s") for line in lines[:-1]), lines  # and their rate


def test_quiet_prints_only_the_summary(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cdr_export, "PROGRESS_EVERY", 1)
    monkeypatch.setattr(cli_cdr, "PROGRESS_LINE_EVERY", 1)
    result = _run(*DAY, "--out", str(env / "q.jsonl"), "--format", "jsonl", "-q")
    assert result.exit_code == 0 and result.output.strip().splitlines() == [
        f"{ALL_CALLS} rows -> {env / 'q.jsonl'} (+ q.jsonl.manifest.json)"]
    manifest = json.loads((env / "q.jsonl.manifest.json").read_text())
    data = (env / "q.jsonl").read_bytes()
    assert manifest["rows"] == ALL_CALLS == len(data.splitlines())
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert not [n for n in FORBIDDEN if n in data.decode()]
    assert not list(env.glob("*.part"))


# Exit 2: a usage mistake (the command line is wrong); 1: the request cannot be served.
@pytest.mark.parametrize(("args", "needle", "code"), [
    (("--from", "2026-11-29", "--to", "2026-11-28"), "--from must be before --to", 2),
    (("--from", "2026-11-28T12:00:00Z", "--to", "2026-11-28T20:00:00+08:00"),
     "--from must be before --to", 2),  # the same instant
    (("--from", "yesterday", "--to", "2026-11-29"), "--from: not a date", 2),
    (("--from", "2026-11-28", "--to", "2026-11-31"), "--to: not a date", 2),
    (("--from", "1900-01-01", "--to", "2026-11-29"),
     "outside the retention period (36500 days)", 1),
])
def test_bad_range_is_one_line(env: Path, args: tuple[str, ...], needle: str,
                               code: int) -> None:
    _one_line_error(_run(*args, "--out", str(env / "x.csv")), needle, code)
    assert not list(env.iterdir())


def test_retention_comes_from_the_settings(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVNUM_CALL_LOG__RETENTION_DAYS", "2")
    start = (utc_now() - timedelta(days=3)).strftime("%Y-%m-%d")
    end = (utc_now() - timedelta(days=1)).strftime("%Y-%m-%d")
    _one_line_error(_run("--from", start, "--to", end, "--out", str(env / "x.csv")),
                    "outside the retention period (2 days)")


@pytest.mark.parametrize("fmt", ["xml", "CSV", "", "json"])
def test_unknown_format_is_one_line(env: Path, fmt: str) -> None:
    _one_line_error(_run(*DAY, "--format", fmt, "--out", str(env / "x")),
                    "--format must be csv or jsonl", code=2)
    assert not list(env.iterdir())


def test_unwritable_output_is_one_line(env: Path) -> None:
    blocker = env / "a-file"
    blocker.write_text("x")
    _one_line_error(_run(*DAY, "--out", str(env / "missing" / "x.csv")), "does not exist")
    _one_line_error(_run(*DAY, "--out", str(blocker / "x.csv")), "does not exist")
    _one_line_error(_run(*DAY, "--out", str(env)), "is a directory")
    assert sorted(p.name for p in env.iterdir()) == ["a-file"]


def test_write_failure_midway_is_one_line_and_leaves_no_part_file(
        env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(self: Any, values: dict[str, Any]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cdr_export.ExportWriter, "write", disk_full)
    _one_line_error(_run(*DAY, "--out", str(env / "x.csv"), "-q"), "No space left on device")
    assert not list(env.iterdir())
