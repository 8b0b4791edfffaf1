"""``bench.cdr_export`` at toy size: every path exports every row, the database export is
byte-identical to the baseline, the manifest agrees, the result JSON is written. No timing
assertions (the figures belong to ``python -m bench cdr_export``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import cdr_export, common

ROWS = 1_234


@pytest.fixture(autouse=True)
def _results_to_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path)


def _check(result: dict[str, Any], targets: list[str], tmp_path: Path) -> None:
    assert result["params"]["rows"] == ROWS
    assert set(result["baseline"]) == {"csv", "jsonl"}
    for fmt, base in result["baseline"].items():
        assert base["rows"] == ROWS and len(base["sha256"]) == 64, fmt
    assert [t["target"] for t in result["targets"]] == targets
    for target in result["targets"]:
        for fmt, got in target["formats"].items():
            assert got["rows"] == got["manifest_rows"] == ROWS, (target["target"], fmt)
            assert got["sha256"] == result["baseline"][fmt]["sha256"]
            assert got["identical_to_baseline"] is True
            assert got["ratio_vs_baseline"] > 0
        assert set(target["tracemalloc_peak_kib"]) == {f"{ROWS // 10}_rows", f"{ROWS}_rows"}
    stored = json.loads((tmp_path / "cdr_export.json").read_text())
    assert stored["name"] == "cdr_export" and stored["params"]["rows"] == ROWS


def test_rows_match_the_baseline_in_memory() -> None:
    rows = list(cdr_export.baseline_rows(25))
    assert [r.id for r in rows] == list(range(1, 26))
    assert [r.record.start_utc for r in rows] == sorted(r.record.start_utc for r in rows)
    assert {r.record.outcome for r in rows} >= {"answered", "rejected"}
    assert all("****" in r.record.caller_masked and "****" in r.record.buyer_masked
               for r in rows)


async def test_sqlite_toy(tmp_path: Path) -> None:
    _check(await cdr_export.run(rows=ROWS, quiet=True), ["sqlite"], tmp_path)


@pytest.mark.postgres
async def test_postgresql_toy(pg_url: str, tmp_path: Path) -> None:
    """``pg_url`` only to skip (outside CI) when PostgreSQL is not reachable; the bench makes
    its own scratch database."""
    _check(await cdr_export.run(rows=ROWS, pg=True, quiet=True), ["sqlite", "postgresql"],
           tmp_path)
