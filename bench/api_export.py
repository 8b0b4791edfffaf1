"""The shop's CSV export over HTTP: time to the first byte against the whole download.

    python -m bench.api_export [--rows N]

A shop with N call records (default 30 000) from the last day, on SQLite; the export
``GET /v1/shops/{shop}/calls/export`` is requested through the app (ASGI, no network) three
times. Reported: the time until the first body piece is sent and until the last; the baseline
is the whole download of the same run (what a client waited for its first byte when the file
was built whole before it was sent). Ratio: first byte / whole download.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.types import Message

from api.app import create_app
from api.metrics import Metrics
from bench.common import console, print_table, ratio, write_result
from binding_store import migrate
from binding_store.call_log import CallLogStore
from binding_store.crypto import KeyRing
from binding_store.db import Database
from binding_store.models import Shop
from binding_store.tokens import TokenStore
from routing.cdr import CdrEvent
from scripts.container import Container
from scripts.http_service import api_services
from scripts.settings import Settings

NAME = "api_export"
SHOP = "bench-shop"
RUNS = 3


def _events(rows: int, now: datetime) -> list[CdrEvent]:
    first = now - timedelta(hours=20)
    step = timedelta(hours=19) / rows
    out = []
    for i in range(rows):
        start = first + step * i
        out.append(CdrEvent(
            system_name="bench", uniqueid=f"bench-{i}", linkedid=f"bench-{i}", sequence=i,
            start=start, answer=start + timedelta(seconds=3), end=start + timedelta(seconds=63),
            duration=63, billsec=60, disposition="ANSWERED", lastapp="Dial", hangup_cause=16,
            pn_binding=f"B{i % 500}", pn_shop=SHOP, pn_order=f"O{i}", pn_x="+8617000000001",
            pn_reason="bridged", pn_direction="merchant", src="13800000001",
            pn_caller="13800000001"))
    return out


async def _download(app: object, token: str) -> tuple[float, float, int]:
    """Seconds to the first body piece, to the last, and the bytes received."""
    path = f"/v1/shops/{SHOP}/calls/export"
    marks: list[float] = []
    size = [0]
    done = asyncio.Event()
    asked = [False]

    async def receive() -> Message:
        if not asked[0]:
            asked[0] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            if message.get("body"):
                marks.append(time.perf_counter())
                size[0] += len(message["body"])
            if not message.get("more_body"):
                marks.append(time.perf_counter())
                done.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "server": ("bench", 80), "client": ("127.0.0.1", 1),
             "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]}
    started = time.perf_counter()
    await app(scope, receive, send)  # type: ignore[operator]
    return marks[0] - started, marks[-1] - started, size[0]


async def run(rows: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        KeyRing.generate().save(Path(tmp) / "keys.json")
        db = Database(url, timeout=30.0)
        now = datetime.now(UTC)
        async with db.session() as session:
            session.add(Shop(id=SHOP, name="bench", service_state="enabled", created_at=now,
                             updated_at=now))
            await session.commit()
        events = _events(rows, now)
        for i in range(0, rows, 2_000):
            await CallLogStore(db).write_batch(events[i:i + 2_000])
        token = (await TokenStore(db).issue(now=now, admin=True)).secret
        settings = Settings(data_dir=Path(tmp), database={"url": url},
                            keys={"file": Path(tmp) / "keys.json"})
        app = create_app(api_services(Container(settings, database=db), Metrics()))
        first, whole, size = [], [], 0
        for _ in range(RUNS):
            a, b, size = await _download(app, token)
            first.append(a)
            whole.append(b)
        await db.dispose()
    best_first, best_whole = min(first), min(whole)
    print_table(f"API CSV export, {rows} rows ({size / 1e6:.1f} MB), best of {RUNS}",
                ["measure", "seconds", "ratio to the whole download"],
                [["first byte", round(best_first, 4), ratio(best_first, best_whole)],
                 ["whole download (baseline)", round(best_whole, 3), 1.0]])
    return {"rows": rows, "bytes": size, "first_byte_seconds": best_first,
            "whole_seconds": best_whole, "first_byte_ratio": ratio(best_first, best_whole)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_export")
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--quick", action="store_true", help="3 000 rows")
    args = parser.parse_args(argv)
    result = asyncio.run(run(3_000 if args.quick else args.rows))
    console.print(f"written {write_result(NAME, result)}")


if __name__ == "__main__":
    main()
