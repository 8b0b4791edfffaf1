"""Shared bits of the benchmarks: results, tables, percentiles, machine facts, scratch stores.

Every benchmark measures its baseline in the same run and reports ratios plus raw numbers; the
machine is shared and noisy, so absolute figures are only comparable within one run.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN_URL = os.environ.get(
    "PRIVNUM_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PRIVNUM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

console = Console(highlight=False, width=150)


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for an empty list)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(q * len(sorted_values)) - 1))
    return sorted_values[rank]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p99/p999/max in milliseconds."""
    ordered = sorted(seconds)
    return {
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "p999_ms": round(percentile(ordered, 0.999) * 1000, 3),
        "max_ms": round((ordered[-1] if ordered else 0.0) * 1000, 3),
    }


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else 0.0


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cores": cores(), "cpu": model, "ram_gb": mem_gb,
            "python": platform.python_version(), "load_avg": os.getloadavg()}


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    body = {"name": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(), **payload}
    path.write_text(json.dumps(body, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (empty if gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _ticks(fields: list[str], last: int = 13) -> int:
    """utime + stime (``last`` 15: + the reaped children's cutime + cstime) of
    :func:`stat_fields`; 0 for a process that is gone."""
    return sum(int(f) for f in fields[11:last])


def proc_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process (Linux /proc); 0 if unavailable."""
    return _ticks(stat_fields(pid)) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_of(pids: Iterable[int]) -> dict[int, float]:
    """User+system CPU seconds of each live process among ``pids``."""
    hz = os.sysconf("SC_CLK_TCK")
    return {pid: _ticks(fields) / hz for pid in pids if (fields := stat_fields(pid))}


def server_cpu(postmaster: int, redis_pid: int) -> tuple[float, float]:
    """CPU seconds so far of the PostgreSQL server (the postmaster, its live children and
    those it has reaped) and of the Redis server (0 where /proc cannot tell). Whole servers:
    on a shared box this includes other clients' work."""
    ticks = 0
    fields = stat_fields(postmaster)
    if fields:
        ticks += _ticks(fields, last=15)
        ticks += sum(_ticks(stat_fields(child)) for child in children(postmaster))
    hz = os.sysconf("SC_CLK_TCK")
    return ticks / hz, _ticks(stat_fields(redis_pid)) / hz


def server_pids(pg_url: str, redis_url: str = REDIS_URL) -> tuple[int, int]:
    """The postmaster's pid (the parent of a backend) and the Redis server's (0: unknown,
    e.g. a server on another machine)."""
    with psycopg.connect(libpq(pg_url), autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    fields = stat_fields(int(row[0])) if row else []
    postmaster = int(fields[1]) if fields else 0
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        redis_pid = int(client.info("server")["process_id"])
    finally:
        client.close()
    return postmaster, redis_pid


def database_backends(pg_url: str) -> list[int]:
    """Pids of the other sessions on this URL's database: the backends serving our clients,
    apart from other benchmarks' databases on the same server."""
    with psycopg.connect(libpq(pg_url), autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = "
                            "current_database() AND pid <> pg_backend_pid()").fetchall()
    return [int(r[0]) for r in rows]


def box_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, from ``/proc/stat``."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0, 0.0
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    busy = user + nice + system + irq + softirq + steal
    hz = os.sysconf("SC_CLK_TCK")
    return busy / hz, (busy + idle + iowait) / hz


def cores() -> int:
    """Cores this process may run on (its affinity), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass
class Stopwatch:
    started: float = 0.0
    cpu_started: float = 0.0

    def start(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.cpu_started = time.process_time()
        return self

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def cpu(self) -> float:
        return time.process_time() - self.cpu_started


# ---- scratch PostgreSQL databases and Redis prefixes -------------------------------------

def pg_database_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def create_pg_database(name: str) -> str:
    with psycopg.connect(libpq(PG_ADMIN_URL), autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return pg_database_url(name)


def drop_pg_database(name: str) -> None:
    with psycopg.connect(libpq(PG_ADMIN_URL), autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_database_exists(name: str) -> bool:
    with psycopg.connect(libpq(PG_ADMIN_URL), autocommit=True, connect_timeout=3) as admin:
        row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


@asynccontextmanager
async def scratch_pg(tag: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one benchmark, dropped afterwards."""
    name = f"privnum_bench_{tag}_{os.getpid()}"
    url = create_pg_database(name)
    try:
        yield url
    finally:
        drop_pg_database(name)


def redis_prefix(tag: str) -> str:
    return f"privnum-bench-{tag}-{secrets.token_hex(3)}"


def clear_redis_prefix(prefix: str, url: str = REDIS_URL) -> int:
    client = redis.Redis.from_url(url, socket_timeout=5)
    removed = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"*{prefix}*", count=2000):
            batch.append(key)
            if len(batch) >= 2000:
                removed += int(client.delete(*batch))
                batch.clear()
        if batch:
            removed += int(client.delete(*batch))
    finally:
        client.close()
    return removed
