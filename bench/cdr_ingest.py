"""Bench: AMI events/s through the listener into SQLite vs a bare socket parser (same run).

    .venv/bin/python -m bench.cdr_ingest [--copies 200]

The recorded Asterisk 22 session is replayed ``copies`` times (each copy's CDR ids made distinct,
in their own shape) at full speed by the fake AMI server over a real socket. Loss = call records
expected - stored once no more have been stored for ``STALL_SECONDS``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
from pathlib import Path

from agi.ami_listener import AmiListener, AmiListenerConfig
from binding_store.all_models import Base
from binding_store.call_log import CallLogStore
from binding_store.db import Database
from routing.cdr import iter_ami_messages
from tests.agi.fake_ami import BANNER, FakeAmi, events_of
from tests.fixtures.ami.scenario import ALL_CALLS, SESSION

STALL_SECONDS = 10.0
_CDR_ID = re.compile(rb"\r\n(UniqueID|LinkedID): ([^\r]*)")
_UUID_HEAD = re.compile(r"[0-9a-f]{8}(?=-)")
_ASTERISK_ID = re.compile(r"(.*-)?(\d+)\.(\d+)")


def copy_id(value: str, n: int) -> str:
    """Copy ``n``'s id for ``value``, of the same shape, so the call log keeps it as it is (an
    id it would not keep gets a stand-in made from the CDR's start and sequence, which every
    copy shares: the copies would be one call). A UUID gets ``n`` as its first group, an
    Asterisk id (``name-epoch.seq``) an epoch ``n`` thousand seconds later."""
    if _UUID_HEAD.match(value):
        return f"{n:08x}" + value[8:]
    found = _ASTERISK_ID.fullmatch(value)
    if found:
        return f"{found[1] or ''}{int(found[2]) + 1000 * n}.{found[3]}"
    return f"c{n}-{value}"


def _stream(copies: int) -> bytes:
    one = events_of(SESSION)
    return b"".join(
        _CDR_ID.sub(lambda m, n=n: b"\r\n" + m[1] + b": " + copy_id(m[2].decode(), n).encode(),
                    one)
        for n in range(copies))


async def _baseline(data: bytes) -> tuple[int, float]:
    async def serve(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(BANNER + data)
        await w.drain()
        w.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    buf = await reader.read()
    events = sum(1 for _ in iter_ami_messages(buf.decode()))
    elapsed = time.perf_counter() - start
    writer.close()
    server.close()
    await server.wait_closed()
    return events, elapsed


async def _listener(data: bytes, expected: int, tmp: Path) -> tuple[int, int, float]:
    db = Database(f"sqlite+aiosqlite:///{tmp / 'bench.db'}", timeout=30)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    server = FakeAmi([data], secret="b")
    port = await server.start()
    listener = AmiListener(AmiListenerConfig(port=port, secret="b", ping_interval=60,
                                             batch_seconds=0.05, batch_size=500),
                           CallLogStore(db))
    start = time.perf_counter()
    task = asyncio.create_task(listener.run())
    # until every record is stored, or nothing more has been for STALL_SECONDS (a loss)
    progress = (0, start)
    while listener.stats.stored < expected:
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        if listener.stats.stored != progress[0]:
            progress = (listener.stats.stored, now)
        elif now - progress[1] > STALL_SECONDS:
            break
    elapsed = time.perf_counter() - start
    await listener.stop()
    await task
    await server.close()
    await db.dispose()
    return listener.stats.events, listener.stats.stored, elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=200)
    args = parser.parse_args()
    data = _stream(args.copies)
    expected = ALL_CALLS * args.copies
    base_events, base_s = await _baseline(data)
    with tempfile.TemporaryDirectory() as tmp:
        events, stored, run_s = await _listener(data, expected, Path(tmp))
    result = {
        "copies": args.copies, "events": events, "records_expected": expected,
        "records_stored": stored, "loss": expected - stored,
        "listener_events_per_s": round(events / run_s), "listener_seconds": round(run_s, 3),
        "baseline_events_per_s": round(base_events / base_s),
        "ratio_listener_vs_baseline": round((events / run_s) / (base_events / base_s), 3),
    }
    print(f"{'path':<28}{'events/s':>12}{'seconds':>10}")
    print(f"{'bare socket + parse':<28}{result['baseline_events_per_s']:>12}{base_s:>10.3f}")
    print(f"{'listener -> SQLite':<28}{result['listener_events_per_s']:>12}{run_s:>10.3f}")
    print(f"records {stored}/{expected}, loss {expected - stored}, "
          f"ratio {result['ratio_listener_vs_baseline']}")
    out = Path(__file__).parent / "results" / "cdr_ingest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
