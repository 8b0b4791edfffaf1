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
from collections.abc import AsyncIterator, Sequence
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
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gb": mem_gb,
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


def proc_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process (Linux /proc); 0 if unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


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
