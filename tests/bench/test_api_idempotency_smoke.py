"""``python -m bench.api_idempotency`` at toy size: the result's structure (no timing
assertion: the figures belong to the benchmark)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import api_idempotency, common


async def test_api_idempotency_toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    result = await api_idempotency.run(3)
    assert result["requests"] == 3
    median = result["median_seconds"]
    assert isinstance(median, dict) and set(median) == {"plain", "new key", "replay"}
    assert all(float(v) > 0 for v in median.values())
