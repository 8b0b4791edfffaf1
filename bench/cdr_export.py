"""Auditor export rows/s (CSV, JSONL) from the call log vs writing the same rows without a database.

    python -m bench cdr_export [--rows 200000] [--pg] [--quick]

``N`` call records are loaded into a scratch ``cdrs`` table (SQLite file; with ``--pg`` also a
scratch PostgreSQL database) and exported through ``scripts.cdr_export.write_export`` -- the code
``privnum cdr export`` runs: server-side cursor, row -> dict -> CSV/JSON line, SHA-256, ``.part``
rename, manifest. Baseline, same run: the same ``N`` rows built in memory and written by the same
``ExportWriter`` with no database. The database export must produce byte-identical files (same
SHA-256). Memory: tracemalloc peak of an export of N/10 rows and of N rows (constant memory: the
two are close), and the process's peak RSS during each export (VmHWM, reset before each run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import console, print_table, ratio, scratch_pg, write_result
from binding_store.call_log_query import export_rows
from binding_store.cdr_models import Cdr
from binding_store.db import Database
from routing.call_log_views import CallRecord, ExportRow
from scripts.cdr_export import ExportWriter, export_dict, write_export

NAME = "cdr_export"
START = datetime(2026, 1, 1, tzinfo=UTC)
FORMATS = ("csv", "jsonl")
TABLE = Cdr.metadata.tables[Cdr.__tablename__]
_OUTCOMES = (("answered", "bridged", "ANSWERED", 16), ("not_answered", "bridged", "NO ANSWER", 19),
             ("rejected", "caller_not_authorized", "NO ANSWER", 21),
             ("failed", "routing_error", "NO ANSWER", 38))


def row_values(n: int) -> dict[str, Any]:
    """Call record ``n`` (0-based) as stored: one per second from START, ids in that order."""
    start = START + timedelta(seconds=n)
    outcome, reason, disposition, cause = _OUTCOMES[0 if n % 10 else (n // 10) % 4]
    answered = outcome == "answered"
    return {
        "id": n + 1, "chain_seq": n + 1, "system_name": "pbx1", "uniqueid": f"pbx1-{n}.1",
        "linkedid": f"pbx1-{n}.0", "shop_id": f"shop{n % 1000:05d}", "order_id": f"O-{n // 3}",
        "binding_id": f"{n:032x}", "buyer_id": f"buyer-{n % 100_000}",
        "caller_a": f"+86138{n % 5000:08d}", "caller_masked": f"138****{n % 10_000:04d}",
        "virtual_x": f"+86170{n % 1000:08d}", "buyer_masked": f"139****{n % 9973:04d}",
        "start_utc": start, "answer_utc": start + timedelta(seconds=5) if answered else None,
        "end_utc": start + timedelta(seconds=65), "duration": 65, "billsec": 60 if answered else 0,
        "disposition": disposition, "hangup_cause": cause,
        "direction": "callback" if n % 4 == 0 else "merchant", "outcome": outcome,
        "reason": reason, "source": "ami", "prev_hash": f"{n:064x}", "row_hash": f"{n + 1:064x}",
        "ingested_at": start + timedelta(seconds=70)}


def baseline_rows(rows: int) -> Iterator[ExportRow]:
    """The rows the database export yields, built in memory (what a DB-less writer sees)."""
    for n in range(rows):
        v = row_values(n)
        yield ExportRow(id=v["id"], chain_seq=v["chain_seq"], row_hash=v["row_hash"],
                        record=CallRecord.from_stored(v))


def window(rows: int) -> tuple[datetime, datetime]:
    return START, START + timedelta(seconds=rows)


async def load(db: Database, rows: int, chunk: int = 5_000) -> float:
    """A fresh ``cdrs`` table holding ``rows`` records; returns the seconds it took."""
    began = time.perf_counter()
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: Cdr.metadata.drop_all(c, tables=[TABLE]))
        await conn.run_sync(lambda c: Cdr.metadata.create_all(c, tables=[TABLE]))
        for lo in range(0, rows, chunk):
            await conn.execute(TABLE.insert(),
                               [row_values(n) for n in range(lo, min(rows, lo + chunk))])
    return time.perf_counter() - began


# ---- memory

def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# ---- one export each way

def export_baseline(out: Path, fmt: str, rows: int) -> dict[str, Any]:
    began = time.perf_counter()
    with out.open("wb") as handle:
        writer = ExportWriter(handle, fmt)
        for row in baseline_rows(rows):
            writer.write(export_dict(row))
        writer.close()
    seconds = time.perf_counter() - began
    return {"rows": writer.rows, "seconds": round(seconds, 3),
            "rows_per_s": round(writer.rows / seconds) if seconds else 0,
            "sha256": writer.sha.hexdigest()}


async def export_db(db: Database, out: Path, fmt: str, rows: int) -> dict[str, Any]:
    rss_reset = _reset_peak_rss()
    began = time.perf_counter()
    manifest = await write_export(export_rows(db, *window(rows)), out, fmt, *window(rows))
    seconds = time.perf_counter() - began
    return {"rows": manifest["rows"], "seconds": round(seconds, 3),
            "rows_per_s": round(manifest["rows"] / seconds) if seconds else 0,
            "sha256": manifest["sha256"], "manifest_rows": manifest["rows"],
            "peak_rss_mb": _peak_rss_mb() if rss_reset else None}


async def traced_peak(db: Database, out: Path, rows: int) -> int:
    """tracemalloc peak (bytes) of a CSV export of the first ``rows`` records."""
    tracemalloc.start()
    try:
        await write_export(export_rows(db, *window(rows)), out, "csv", *window(rows))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def bench_target(label: str, url: str, rows: int, work: Path,
                       baseline: dict[str, dict[str, Any]]) -> dict[str, Any]:
    db = Database(url, timeout=60.0)
    try:
        load_s = await load(db, rows)
        formats: dict[str, Any] = {}
        for fmt in FORMATS:
            result = await export_db(db, work / f"{label}.{fmt}", fmt, rows)
            result["identical_to_baseline"] = result["sha256"] == baseline[fmt]["sha256"]
            result["ratio_vs_baseline"] = ratio(result["rows_per_s"],
                                                baseline[fmt]["rows_per_s"])
            formats[fmt] = result
        small = max(1, rows // 10)
        peak_small = await traced_peak(db, work / f"{label}-small.csv", small)
        peak_full = await traced_peak(db, work / f"{label}-full.csv", rows)
    finally:
        await db.dispose()
    return {"target": label, "load_seconds": round(load_s, 1), "formats": formats,
            "tracemalloc_peak_kib": {f"{small}_rows": peak_small // 1024,
                                     f"{rows}_rows": peak_full // 1024},
            "tracemalloc_growth_full_vs_tenth": ratio(peak_full, peak_small)}


async def run(rows: int = 200_000, pg: bool = False, quiet: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="privnum-cdr-export-") as tmp:
        work = Path(tmp)
        for fmt in FORMATS:  # warm-up: imports, caches, the allocator
            export_baseline(work / f"warm.{fmt}", fmt, min(rows, 2_000))
        baseline = {fmt: export_baseline(work / f"baseline.{fmt}", fmt, rows)
                    for fmt in FORMATS}
        targets = [await bench_target("sqlite", f"sqlite+aiosqlite:///{work / 'cdr.db'}",
                                      rows, work, baseline)]
        if pg:
            async with scratch_pg("cdr_export") as url:
                targets.append(await bench_target("postgresql", url, rows, work, baseline))
    results: dict[str, Any] = {"params": {"rows": rows, "formats": list(FORMATS), "pg": pg},
                               "baseline": baseline, "targets": targets,
                               "pid": os.getpid()}
    if not quiet:
        table: list[list[Any]] = [[f"no database (baseline) {fmt}", b["rows"], b["rows_per_s"],
                                   b["seconds"], 1.0, "", ""] for fmt, b in baseline.items()]
        for t in targets:
            for fmt, r in t["formats"].items():
                table.append([f"{t['target']} {fmt}", r["rows"], r["rows_per_s"], r["seconds"],
                              r["ratio_vs_baseline"], r["peak_rss_mb"] or "n/a",
                              "yes" if r["identical_to_baseline"] else "NO"])
        print_table(f"CDR export: {rows:,} rows (write_export, as `privnum cdr export`)",
                    ["path", "rows", "rows/s", "seconds", "ratio", "peak RSS MB", "same bytes"],
                    table)
        for t in targets:
            peaks = t["tracemalloc_peak_kib"]
            console.print(f"{t['target']}: load {t['load_seconds']} s; tracemalloc peak "
                          + ", ".join(f"{k.replace('_', ' ')}: {v:,} KiB"
                                      for k, v in peaks.items())
                          + f" (x{t['tracemalloc_growth_full_vs_tenth']} for 10x the rows)")
    write_result(NAME, results)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench cdr_export")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--pg", action="store_true", help="also export from PostgreSQL")
    parser.add_argument("--quick", action="store_true", help="20 000 rows")
    args = parser.parse_args(argv)
    rows = args.rows or (20_000 if args.quick else 200_000)
    if rows < 1:
        parser.error("--rows must be at least 1")
    return asyncio.run(run(rows=rows, pg=args.pg))


if __name__ == "__main__":
    main()
