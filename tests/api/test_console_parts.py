"""The console's parts on their own: the session cookie, the charts, an export that fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from api.console.charts import calls_chart, pool_chart, slots_chart
from api.console.exports import ExportJobs, JobState
from api.console.session import SessionCodec
from routing.call_log_views import ExportRow
from routing.console_views import ChainCheck, DayCalls, PoolUse

NOW = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)


def test_the_session_holds_the_token_encrypted_and_ends() -> None:
    codec = SessionCodec(Fernet.generate_key(), seconds=600)
    cookie = codec.issue("pn_secret", NOW)
    assert "pn_secret" not in cookie
    session = codec.read(cookie, NOW + timedelta(seconds=599))
    assert session is not None and session.token == "pn_secret"
    assert codec.read(cookie, NOW + timedelta(seconds=600)) is None
    # tampered: one character inside the token changed (always a change, unlike writing a
    # fixed suffix, which a token ending in that suffix already leaves intact)
    middle = len(cookie) // 2
    tampered = cookie[:middle] + ("A" if cookie[middle] != "A" else "B") + cookie[middle + 1:]
    assert tampered != cookie
    assert codec.read(tampered, NOW) is None
    other = SessionCodec(Fernet.generate_key(), seconds=600)
    assert other.read(cookie, NOW) is None  # another process's key (a restart)
    assert codec.read(None, NOW) is None


def test_charts_name_every_series_and_bar() -> None:
    svg = calls_chart([DayCalls(day=date(2026, 11, 27), counts={"bridged": 3}),
                       DayCalls(day=date(2026, 11, 28),
                                counts={"bridged": 1, "caller_not_authorized": 2,
                                        "unknown": 1})])
    assert svg.startswith("<svg") and svg.count("<rect") == 4 + 3  # bars + legend
    assert "11-28: rejected: caller not authorized 2" in svg
    assert "rejected: reason not recorded" in svg
    pool = pool_chart([PoolUse(region="<east>", free=2, in_use=1)])
    assert "&lt;east&gt;" in pool and "<east>" not in pool  # escaped
    assert "cooling down" in pool
    assert calls_chart([]).startswith("<svg")  # nothing to draw is still a chart
    modes = pool_chart([PoolUse(region="axb", free=2), PoolUse(region="extension", in_use=1)],
                       "mode")
    assert "Pool numbers by mode and state" in modes and "extension: in use 1" in modes
    slots = slots_chart([PoolUse(region="east", slots=10, slots_in_use=3),
                         PoolUse(region="west")])  # no slots: no bar
    assert "east: slots in use 3" in slots and "east: slots free 7" in slots
    assert "west" not in slots


async def test_an_export_that_cannot_be_written_says_why(tmp_path: Path) -> None:
    async def writer(source: AsyncIterator[ExportRow], out: Path, fmt: str, start: datetime,
                     end: datetime, shop: str | None = None,
                     progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        raise OSError(28, "No space left on device")

    async def rows() -> AsyncIterator[ExportRow]:
        return
        yield  # pragma: no cover - an empty stream

    async def verify() -> ChainCheck:
        return ChainCheck(ok=True, rows=0)

    jobs = ExportJobs(tmp_path / "exports", writer)
    job = jobs.start(rows=rows, verify=verify, since=NOW - timedelta(days=1), until=NOW,
                     shop_id=None, fmt="csv", now=NOW, by="admin")
    assert job.state is JobState.RUNNING
    for _ in range(100):
        if job.state is not JobState.RUNNING:
            break
        await asyncio.sleep(0.01)
    assert job.state is JobState.FAILED
    assert job.error == "the export file could not be written: No space left on device"
    assert jobs.all() == [job]
    await jobs.aclose()
