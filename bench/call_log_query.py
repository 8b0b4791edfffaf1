"""The shop's call-log query on PostgreSQL: 10 M CDR rows across 1 000 shops.

    python -m bench call_log_query [--quick | --full] [--rows N] [--queries Q]

Default: 1 000 000 rows (generated once, ~1-2 min on the 2-core box, then cached) so that
``python -m bench`` fits its ~10-minute budget; ``--full`` (or ``--rows 10000000``) is the
issue's 10 M rows (~7 min to generate once, cached afterwards; the generation time is reported
separately as ``generation_seconds``). ``--quick``: 200 000 rows, 100 queries.
Rows are generated server-side (one ``INSERT ... SELECT generate_series``) into the ``cdrs``
table created from ``binding_store.cdr_models`` metadata, indexes built after the load, in a
database kept between runs (``privnum_bench_calllog``; regenerated only when the row count
differs; ``python -m bench --clean`` drops it). Shop sizes are skewed (a few big shops). Each
query: a random shop, the last 30 days, page 1 (50 rows) and two more pages by cursor, through
``binding_store.call_log_query.list_calls``. Baseline: ``SELECT 1`` through the same sessions.
Target: p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, text

from bench.common import (
    create_pg_database,
    drop_pg_database,
    latency_summary,
    pg_database_exists,
    pg_database_url,
    print_table,
    ratio,
    write_result,
)
from binding_store.call_log_query import list_calls
from binding_store.cdr_models import Cdr
from binding_store.db import Database
from routing.call_log_views import CallLogQuery, LinkTemplates

CDRS = cast(Table, Cdr.__table__)
NAME = "call_log_query"
DB_NAME = "privnum_bench_calllog"
SHOPS = 1_000
PAGES = 3
PAGE = 50
DEFAULT_ROWS = 1_000_000
FULL_ROWS = 10_000_000
GEN_VERSION = 3  # bump when _GENERATE changes: the cached table is then rebuilt

_GENERATE = """
INSERT INTO cdrs (chain_seq, system_name, uniqueid, linkedid, shop_id, order_id, binding_id,
  buyer_id, caller_a, caller_masked, virtual_x, buyer_masked, start_utc, answer_utc, end_utc,
  duration, billsec, disposition, hangup_cause, direction, outcome, reason, source, prev_hash,
  row_hash, ingested_at)
SELECT g, 'bench', 'u' || g, 'l' || g, q.shop, 'o' || (g / 3), md5(g::text), 'b' || (g % 100000),
  '+86138' || lpad((g % 5000)::text, 8, '0'), '138****' || lpad((g % 10000)::text, 4, '0'),
  '+86170' || lpad((g % 1000)::text, 8, '0'), '139****' || lpad((g % 9973)::text, 4, '0'),
  q.start, q.start + interval '5 s', q.start + interval '65 s', 65, 60, 'ANSWERED', 16,
  CASE WHEN g % 4 = 0 THEN 'callback' ELSE 'merchant' END,
  CASE WHEN g % 10 = 0 THEN 'rejected' WHEN g % 7 = 0 THEN 'not_answered' ELSE 'answered' END,
  CASE WHEN g % 10 = 0 THEN 'caller_not_authorized' ELSE 'bridged' END, 'ami',
  md5(g::text || 'p') || md5(g::text || 'q'), md5(g::text || 'r') || md5(g::text || 's'),
  q.start + interval '70 s'
FROM (SELECT g, 'shop' || lpad((floor(:shops * power(random(), 2)))::int::text, 5, '0') AS shop,
        CAST(:gen_at AS timestamptz) - random() * interval '40 days' AS start
      FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g) AS q
"""


async def ensure_data(rows: int, *, log: bool = True, db_name: str = DB_NAME
                      ) -> tuple[Database, datetime, bool, float]:
    """The cached table with ``rows`` rows (generated if missing or of another size), when it
    was generated, whether it came from the cache, and how long generating it took."""
    url = pg_database_url(db_name)
    if pg_database_exists(db_name):
        db = Database(url, timeout=20.0)
        try:
            async with db.engine.connect() as conn:
                meta = (await conn.execute(text(
                    "SELECT rows, version, generated_at, gen_seconds FROM bench_meta")
                )).one_or_none()
            if meta is not None and (int(meta.rows), int(meta.version)) == (rows,
                                                                            GEN_VERSION):
                return db, meta.generated_at, True, float(meta.gen_seconds)
        except Exception:
            pass
        await db.dispose()
    create_pg_database(db_name)
    db = Database(url, timeout=600.0)
    generated_at = datetime.now(UTC).replace(microsecond=0)
    began = time.perf_counter()
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: Cdr.metadata.create_all(c, tables=[CDRS]))
        for index in CDRS.indexes:
            await conn.execute(text(f'DROP INDEX "{index.name}"'))
        await conn.execute(text("SELECT setseed(0.42)"))
        step = 1_000_000
        for lo in range(1, rows + 1, step):
            await conn.execute(text(_GENERATE), {"lo": lo, "hi": min(rows, lo + step - 1),
                                                 "shops": SHOPS, "gen_at": generated_at})
            if log:
                print(f"  generated {min(rows, lo + step - 1):,} rows "
                      f"({time.perf_counter() - began:.0f} s)", flush=True)
        await conn.execute(text("SET maintenance_work_mem = '512MB'"))
        for index in CDRS.indexes:
            await conn.run_sync(index.create)
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE cdrs"))
    gen_seconds = round(time.perf_counter() - began, 1)
    async with db.engine.begin() as conn:  # last: a half-built table is never "cached"
        await conn.execute(text("CREATE TABLE bench_meta (rows bigint, version int, "
                                "generated_at timestamptz, gen_seconds float8)"))
        await conn.execute(text("INSERT INTO bench_meta VALUES (:r, :v, :g, :s)"),
                           {"r": rows, "v": GEN_VERSION, "g": generated_at, "s": gen_seconds})
    if log:
        print(f"  table ready in {gen_seconds:.0f} s", flush=True)
    await db.dispose()
    return Database(url, timeout=20.0), generated_at, False, gen_seconds


async def run(rows: int = DEFAULT_ROWS, queries: int = 300, quiet: bool = False,
              db_name: str = DB_NAME) -> dict[str, Any]:
    began = time.perf_counter()
    db, generated_at, cached, gen_seconds = await ensure_data(rows, log=not quiet,
                                                              db_name=db_name)
    prepare_s = time.perf_counter() - began
    links = LinkTemplates(order="https://m.example/o/{order_id}", chat="https://m.example/c")
    rnd = random.Random(3)
    now = generated_at
    async with db.engine.connect() as conn:
        biggest = (await conn.execute(text(
            "SELECT shop_id, count(*) FROM cdrs WHERE shop_id IN ('shop00000', 'shop00500') "
            "GROUP BY shop_id ORDER BY 2 DESC"))).all() if rows <= 2_000_000 else []
    for _ in range(20):  # warm the connection pool and the caches
        await list_calls(db, CallLogQuery(shop_id=f"shop{rnd.randrange(SHOPS):05d}",
                                          since=now - timedelta(days=30), limit=PAGE), now, links)
    first: list[float] = []
    later: list[float] = []
    returned = 0
    for _ in range(queries):
        shop = f"shop{rnd.randrange(SHOPS):05d}"
        cursor = None
        for page in range(PAGES):
            t0 = time.perf_counter()
            result = await list_calls(db, CallLogQuery(
                shop_id=shop, since=now - timedelta(days=30), until=now, limit=PAGE,
                cursor=cursor), now, links)
            (first if page == 0 else later).append(time.perf_counter() - t0)
            returned += len(result.entries)
            cursor = result.next_cursor
            if cursor is None:
                break
    baseline: list[float] = []
    for _ in range(queries):
        t0 = time.perf_counter()
        async with db.session() as s:
            await s.execute(text("SELECT 1"))
        baseline.append(time.perf_counter() - t0)
    await db.dispose()
    every = first + later
    summary = latency_summary(every)
    base = latency_summary(baseline)
    results: dict[str, Any] = {
        "params": dict(rows=rows, shops=SHOPS, queries=queries, pages=PAGES, page_size=PAGE),
        "table_cached": cached, "prepare_seconds": round(prepare_s, 1),
        "generation_seconds": gen_seconds,
        "all_pages": summary, "first_page": latency_summary(first),
        "next_pages": latency_summary(later), "baseline_select1": base,
        "rows_returned": returned, "sample_shop_sizes": [list(r) for r in biggest],
        "ratio_p50_to_select1": ratio(summary["p50_ms"], base["p50_ms"]),
        "targets": {"p99 <= 50 ms": summary["p99_ms"] <= 50.0},
    }
    if not quiet:
        print_table(f"Call-log query: {rows:,} CDRs, {SHOPS} shops, 30-day window, "
                    f"{queries} queries x up to {PAGES} pages of {PAGE}"
                    f" (table {'cached' if cached else 'generated'} in {prepare_s:.0f} s;"
                    f" generating it took {gen_seconds:.0f} s)",
                    ["what", "p50 ms", "p99 ms", "p99.9 ms", "max ms"],
                    [[k, v["p50_ms"], v["p99_ms"], v["p999_ms"], v["max_ms"]] for k, v in (
                        ("all pages", summary), ("first page", results["first_page"]),
                        ("next pages (cursor)", results["next_pages"]),
                        ("baseline SELECT 1", base))])
    write_result(NAME, results)
    return results


def clean() -> None:
    drop_pg_database(DB_NAME)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench call_log_query")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full", action="store_true", help="the issue's 10 M rows")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--queries", type=int)
    args = parser.parse_args(argv)
    rows = args.rows or (200_000 if args.quick else FULL_ROWS if args.full else DEFAULT_ROWS)
    queries = args.queries or (100 if args.quick else 300)
    return asyncio.run(run(rows=rows, queries=queries))


if __name__ == "__main__":
    main()
