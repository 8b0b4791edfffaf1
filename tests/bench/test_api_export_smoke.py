"""``python -m bench.api_export`` at toy size: the result's structure, every byte sent in
pieces (no timing assertion: the figures belong to the benchmark)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import api_export, common


async def test_api_export_toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    result = await api_export.run(300)
    assert result["rows"] == 300
    assert int(result["bytes"]) > 300 * 100  # a header and 300 rows of CSV
    assert 0 < float(result["first_byte_seconds"]) <= float(result["whole_seconds"])
