"""The call-log benchmark's data: N CDR rows over 40 days for 1 000 shops, in the schema the
service runs (``cdrs`` partitioned by week with its DEFAULT partition, the models' indexes),
generated server-side and cached in a database of its own between runs.

Shop sizes are skewed (``floor(1000 * random()^2)``: a few big shops), start times uniform
over the 40 days in random order. The newest ``FRESH_HOURS`` are loaded after the VACUUM, as a
live system's newest rows are: their pages are not yet all-visible, so the index-only scan
reads the heap for them. Two hours is what the partitions' autovacuum setting leaves at this
rate (a vacuum after each 1 % of a weekly partition's ~1.75 M rows, about every 1.7 hours of
calls; ``binding_store.partitioned.PARTITION_STORAGE``); autovacuum is then turned off on the
benchmark's table so that the state stays as stated while it runs.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, text

from bench.common import create_pg_database, pg_database_exists, pg_database_url
from binding_store import migrate
from binding_store.call_log_query import CallLogQuery, list_statement
from binding_store.cdr_models import Cdr
from binding_store.db import Database
from binding_store.partitions import ensure_partitions, partitions_of
from routing.call_log_views import resolve_window

CDRS = cast(Table, Cdr.__table__)
SHOPS = 1_000
DAYS = 40
FRESH_HOURS = 2
PERIOD = "week"
GEN_VERSION = 5  # bump when the generation or the schema changes: the cached table is rebuilt

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
        CAST(:gen_at AS timestamptz) - CAST(:older AS int) * interval '1 hour'
          - random() * CAST(:span AS int) * interval '1 hour' AS start
      FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g) AS q
"""


async def cached(db_name: str, rows: int) -> tuple[datetime, float] | None:
    """(generated_at, generation seconds) of a complete cached table of ``rows`` rows."""
    if not pg_database_exists(db_name):
        return None
    db = Database(pg_database_url(db_name), timeout=20.0)
    try:
        async with db.engine.connect() as conn:
            meta = (await conn.execute(text(
                "SELECT rows, version, generated_at, gen_seconds FROM bench_meta"))).one_or_none()
    except Exception:
        return None
    finally:
        await db.dispose()
    if meta is None or (int(meta.rows), int(meta.version)) != (rows, GEN_VERSION):
        return None
    return meta.generated_at, float(meta.gen_seconds)


# The layout before partitioning (migration 0004's schema), for ``--flat``: its indexes,
# built after the load like the partitioned ones.
FLAT_BEFORE = "0004_index_watermark"
FLAT_INDEXES = (
    "CREATE INDEX ix_cdrs_shop_start ON cdrs (shop_id, start_utc, id)",
    "CREATE INDEX ix_cdrs_shop_order ON cdrs (shop_id, order_id)",
    "CREATE INDEX ix_cdrs_start ON cdrs (start_utc)",
    "CREATE INDEX ix_cdrs_linkedid ON cdrs (linkedid)",
)
# ``--flat`` has no partitions before the window to refill the shared buffers with: this table
# (~580 MB) plays that part.
FILLER = "bench_filler"


async def _flat_schema(db: Database, db_name: str) -> None:
    await asyncio.to_thread(migrate.upgrade, pg_database_url(db_name), FLAT_BEFORE)
    async with db.engine.begin() as conn:
        for ddl in FLAT_INDEXES:
            await conn.execute(text(f"DROP INDEX {ddl.split()[2]}"))
        await conn.execute(text("ALTER TABLE cdrs SET (autovacuum_enabled = false)"))
        await conn.execute(text(f"CREATE TABLE {FILLER} AS SELECT g, md5(g::text) || "
                                "md5(g::text) AS t FROM generate_series(1, 6000000) AS g"))


async def _partitioned_schema(db: Database, generated_at: datetime) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: Cdr.metadata.create_all(c, tables=[CDRS]))
        for index in CDRS.indexes:  # built after the load: faster
            await conn.execute(text(f'DROP INDEX IF EXISTS "{index.name}"'))
    await ensure_partitions(db, generated_at, PERIOD, 1,
                            since=generated_at - timedelta(days=DAYS))
    async with db.engine.begin() as conn:
        for part in (await partitions_of(db))["cdrs"]:
            await conn.execute(text(f"ALTER TABLE {part.name} SET (autovacuum_enabled = false)"))


async def _build_indexes(conn: Any, flat: bool) -> None:
    await conn.execute(text("SET maintenance_work_mem = '512MB'"))
    if flat:
        for ddl in FLAT_INDEXES:
            await conn.execute(text(ddl))
        return
    for index in CDRS.indexes:
        await conn.run_sync(index.create)


async def generate(db_name: str, rows: int, log: bool, flat: bool = False
                   ) -> tuple[datetime, float]:
    """Build the table afresh (``flat``: one table, the schema before partitioning); returns
    when it was generated and how long that took."""
    create_pg_database(db_name)
    db = Database(pg_database_url(db_name), timeout=600.0)
    generated_at = datetime.now(UTC).replace(microsecond=0)
    began = time.perf_counter()

    def say(what: str) -> None:
        if log:
            print(f"  {what} ({time.perf_counter() - began:.0f} s)", flush=True)

    try:
        if flat:
            await _flat_schema(db, db_name)
        else:
            await _partitioned_schema(db, generated_at)
        async with db.engine.begin() as conn:
            await conn.execute(text("SELECT setseed(0.42)"))
            hours = DAYS * 24
            older = rows * (hours - FRESH_HOURS) // hours  # all but the newest hours
            await _load(conn, 1, older, generated_at, (FRESH_HOURS, hours - FRESH_HOURS), say)
            await _build_indexes(conn, flat)
            say("indexes built")
        await _autocommit(db, "VACUUM ANALYZE cdrs")
        say("vacuumed")
        async with db.engine.begin() as conn:
            await _load(conn, older + 1, rows, generated_at, (0, FRESH_HOURS), say)
        await _autocommit(db, "ANALYZE cdrs")
        gen_seconds = round(time.perf_counter() - began, 1)
        async with db.engine.begin() as conn:  # last: a half-built table is never "cached"
            await conn.execute(text("CREATE TABLE bench_meta (rows bigint, version int, "
                                    "generated_at timestamptz, gen_seconds float8)"))
            await conn.execute(text("INSERT INTO bench_meta VALUES (:r, :v, :g, :s)"),
                               {"r": rows, "v": GEN_VERSION, "g": generated_at,
                                "s": gen_seconds})
    finally:
        await db.dispose()
    say("table ready")
    return generated_at, gen_seconds


async def _load(conn: Any, lo: int, hi: int, gen_at: datetime, hours: tuple[int, int],
                say: Any) -> None:
    """Rows ``lo..hi`` starting between ``hours[0]`` and ``hours[0] + hours[1]`` hours ago."""
    step = 1_000_000
    for first in range(lo, hi + 1, step):
        last = min(hi, first + step - 1)
        await conn.execute(text(_GENERATE), {"lo": first, "hi": last, "shops": SHOPS,
                                             "gen_at": gen_at, "older": hours[0],
                                             "span": hours[1]})
        say(f"generated {last:,} rows")


async def _autocommit(db: Database, sql: str) -> None:
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(sql))


async def explain_list(db: Database, query: CallLogQuery, now: datetime) -> dict[str, Any]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of the shop query as ``list_calls`` sends it: the plan's
    top node (JSON) and the partitions it scanned."""
    stmt = list_statement(query, resolve_window(now, query.since, query.until))
    async with db.engine.connect() as conn:
        compiled = stmt.compile(dialect=conn.dialect)
        plan = (await conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + str(compiled),
            compiled.construct_params())).scalar_one()
    top = plan[0]["Plan"]
    return {"plan": top, "scanned": sorted(executed_relations(top))}


def executed_relations(node: dict[str, Any]) -> set[str]:
    """Relations a plan node (and its children) actually scanned (``never executed`` ones
    have no loops)."""
    found: set[str] = set()
    if node.get("Relation Name") and node.get("Actual Loops", 0) > 0:
        found.add(str(node["Relation Name"]))
    for child in node.get("Plans", []):
        found |= executed_relations(child)
    return found


def planned_relations(node: dict[str, Any]) -> set[str]:
    """Relations the plan kept after pruning (executed or not)."""
    found = {str(node["Relation Name"])} if node.get("Relation Name") else set()
    for child in node.get("Plans", []):
        found |= planned_relations(child)
    return found
