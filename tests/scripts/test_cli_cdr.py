"""``privnum cdr export/verify/purge/reconcile`` and ``privnum calls list`` on a migrated SQLite."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from binding_store import migrate
from binding_store.call_log_query import export_rows
from binding_store.cdr_models import Cdr
from binding_store.db import Database
from scripts.cli import app
from scripts.cli_cdr import ExportWriter, export_dict
from tests.fixtures.ami.scenario import (
    ALL_CALLS,
    CALL_DAY,
    FORBIDDEN,
    HERE,
    migrated_call_log,
)

RECORDED_CALLS_RETENTION = 36_500


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = migrated_call_log(tmp_path / "cli.db")
    migrate.check(url)  # the migration matches the models
    monkeypatch.setenv("PRIVNUM_DATABASE__URL", url)
    monkeypatch.setenv("PRIVNUM_DATA_DIR", str(tmp_path))
    # The recorded calls have fixed dates: a retention of a century keeps them exportable
    # whatever today's date is.
    monkeypatch.setenv("PRIVNUM_CALL_LOG__RETENTION_DAYS", str(RECORDED_CALLS_RETENTION))
    return url


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_writes_file_and_manifest(env: str, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"cdrs.{fmt}"
    result = _run("cdr", "export", "--from", "2026-11-28", "--to", "2026-11-29",
                  "--format", fmt, "--out", str(out), "-q")
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    manifest = json.loads((tmp_path / f"cdrs.{fmt}.manifest.json").read_text())
    assert manifest["rows"] == ALL_CALLS and manifest["format"] == fmt
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["time_zone"] == "UTC"
    text = data.decode()
    assert "2026-11-28T12:35:49Z" in text and "139****0003" in text
    assert not [n for n in FORBIDDEN if n in text]


def test_export_rejects_bad_range(env: str, tmp_path: Path) -> None:
    result = _run("cdr", "export", "--from", "2026-11-29", "--to", "2026-11-28",
                  "--out", str(tmp_path / "x.csv"))
    assert result.exit_code == 2 and "before" in result.output  # a usage mistake


def test_verify_purge_reconcile_and_calls_list(env: str) -> None:
    ok = _run("cdr", "verify")
    assert ok.exit_code == 0 and f"ok: {ALL_CALLS} rows" in ok.output
    dry = _run("cdr", "purge", "--older-than-days", "1", "--dry-run")
    assert dry.exit_code == 0 and "would delete" in dry.output
    again = _run("cdr", "reconcile", "--file", str(HERE / "cdr-custom-session.csv"),
                 "--system-name", "pnlab")
    assert again.exit_code == 0 and "imported 0 call record" in again.output
    listed = _run("calls", "list", "--shop", "shop-1")
    assert listed.exit_code == 0 and "calls of shop shop-1" in listed.output

def test_calls_list_too_far_back_is_one_line(env: str) -> None:
    result = _run("calls", "list", "--shop", "shop-1", "--since", "2000-01-01")
    assert result.exit_code == 1 and "at most 30 days" in result.output
    assert "Traceback" not in result.output


async def _export_peak(db: Database, rows: int, path: Path) -> int:
    async with db.engine.begin() as conn:
        await conn.execute(Cdr.__table__.delete())
        template = {c.key: c.default.arg if c.default is not None and not callable(
            c.default.arg) else None for c in Cdr.__table__.columns}
        base = dict(template, system_name="bench", linkedid="l", shop_id="s", order_id="o",
                    binding_id="b", buyer_id="u", caller_a="+8613800000001",
                    caller_masked="138****0001", virtual_x="9001", buyer_masked="139****0001",
                    start_utc=CALL_DAY, answer_utc=CALL_DAY, end_utc=CALL_DAY, duration=2,
                    billsec=2, disposition="ANSWERED", hangup_cause=16, direction="merchant",
                    outcome="answered", reason="bridged", source="ami", prev_hash="0" * 64,
                    row_hash="1" * 64, ingested_at=CALL_DAY)
        base.pop("id")
        for start in range(0, rows, 10_000):
            await conn.execute(insert(Cdr), [dict(base, uniqueid=f"u{n}", chain_seq=n + 1)
                                             for n in range(start, min(rows, start + 10_000))])
    tracemalloc.start()
    with path.open("wb") as handle:
        writer = ExportWriter(handle, "csv")
        async for row in export_rows(db, CALL_DAY - timedelta(days=1),
                                     CALL_DAY + timedelta(days=1)):
            writer.write(export_dict(row))
        writer.close()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert writer.rows == rows
    return peak


@pytest.mark.slow
async def test_export_memory_does_not_grow_with_rows(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'mem.db'}"
    migrate.upgrade(url)
    db = Database(url, timeout=30)
    # Six times the rows: a file built in memory would need several times the small peak.
    small = await _export_peak(db, 10_000, tmp_path / "a.csv")
    large = await _export_peak(db, 60_000, tmp_path / "b.csv")
    await db.dispose()
    assert large < small * 2 + 2_000_000, (small, large)
