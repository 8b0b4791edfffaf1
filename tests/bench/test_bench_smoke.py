"""Each benchmark's core at toy size: the result structure, and no losses or duplicates.

No timing assertions: the figures themselves belong to ``python -m bench``, not to tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import (
    agi_load,
    allocation,
    batch_writes,
    call_log_query,
    callpath,
    common,
    scaling,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _services(pg_url: str, redis_url: str, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip (outside CI) where PostgreSQL or Redis is not reachable; results go to tmp."""
    monkeypatch.setattr(common, "RESULTS", tmp_path)


async def test_agi_load_toy() -> None:
    result = await agi_load.run(calls=60, concurrency=8, script_calls=2, script_concurrency=1,
                                pool_size=50, bindings=200, quiet=True, max_seconds=30)
    assert [v["variant"][0] for v in result["variants"]] == ["a", "b", "c", "d"]
    for variant in result["variants"]:
        assert variant["lost"] == 0 and variant["wrong_action"] == 0
        assert variant["completed"] > 0
        assert {"p50_ms", "p99_ms", "p999_ms"} <= set(variant["decision"])
    assert set(result["ratios"]) == {"b/a", "c/a", "c/d"}
    # (c) runs on the shipped wiring with a seeded index: merchant and callback calls are
    # answered by Redis alone, strangers by SQL; every attempt reaches the batched writer.
    c = result["variants"][2]
    # A current index answers strangers and non-pool numbers too; SQL only for a shop or
    # caller state whose key lapsed (redis state_ttl) on a slow run.
    fast = c["fast_path"]
    assert fast["index_hits"] > 0 and fast["sql_reads"] * 10 <= fast["index_hits"]
    assert c["server_stats"]["attempts_written"] == c["server_stats"]["accepted"]


async def test_allocation_toy() -> None:
    result = await allocation.run(issues=64, concurrency=4, pool_size=50, bindings=100,
                                  quiet=True)
    assert result["duplicate_pairs"] == 0
    assert result["issue"]["done"] == 64 and not result["issue"]["errors"]
    assert result["cpu_bound_issue_to_floor"] > 0  # every party's CPU, floor over issue
    assert allocation.cpu_per_op({"cpu_ms_per_op": 0.1, "server_cpu_ms_per_op": 0.2,
                                  "redis_cpu_ms_per_op": 0.05}) == pytest.approx(0.35)
    assert result["floor"]["done"] == 64
    # + 2 warm-up issues per task (4 tasks) in each of the 2 rounds
    assert result["active_bindings_after"] == 100 + 64 + 2 * 4 * 2


async def test_allocation_timed_rounds() -> None:
    """By default a round lasts a time, not a count: every phase runs, nothing is lost or
    duplicated, and a phase's rate is its rounds' median, each from the workers' own spans."""
    # a pool no line of the run can exhaust, however fast the machine issues
    result = await allocation.run(seconds=0.3, rounds=2, concurrency=4, pool_size=2_000,
                                  bindings=1_000, quiet=True)
    assert result["params"]["round_seconds"] == 0.3
    assert result["duplicate_pairs"] == 0
    for phase in ("floor", "session_floor", "issue"):
        figures = result[phase]
        assert figures["done"] > 0 and not figures["errors"]
        assert len(figures["per_round_per_s"]) == 2
        assert figures["per_s"] == pytest.approx(
            sum(figures["per_round_per_s"]) / 2, abs=0.1)
    assert result["ratio_issue_to_floor"] == pytest.approx(
        result["issue"]["per_s"] / result["floor"]["per_s"], abs=0.001)


async def test_batch_writes_toy() -> None:
    """Both ways of writing attempts with their events leave the same events: two for each
    refused call (the bench's calls are refusals)."""
    result = await batch_writes.run(rounds=1, batches=2, size=10)
    calls = (2 + 2) * 10  # two warm-up batches and two measured ones, of ten calls each
    assert result["attempts + events, Python"]["events_written"] == 2 * calls
    assert result["attempts + events, PostgreSQL"]["events_written"] == 2 * calls
    assert all(r["client_us_per_row"] > 0 for r in result.values())


async def test_scaling_toy() -> None:
    result = await scaling.run(calls=40, bindings=100, max_seconds=20, concurrency=(2, 8),
                               pools=(50, 200), quiet=True)
    assert len(result["cells"]) == 4
    assert result["lost_total"] == 0 and result["wrong_action_total"] == 0
    assert set(result["pool_ratio"]) == {"C=2", "C=8"}


async def test_call_log_query_toy() -> None:
    name = f"privnum_bench_t_{os.getpid()}"
    try:
        result = await call_log_query.run(rows=5_000, queries=5, quiet=True, db_name=name)
        again = await call_log_query.run(rows=5_000, queries=5, quiet=True, db_name=name)
    finally:
        common.drop_pg_database(name)
    assert result["table_cached"] is False and again["table_cached"] is True
    assert result["rows_returned"] > 0
    assert {"p50_ms", "p99_ms"} <= set(result["all_pages"])


async def test_callpath_workers_toy() -> None:
    result = await callpath.run(rounds=1, calls=150, max_seconds=20, only="workers")
    rows = result["workers"]["rounds"]
    assert [v["workers"] for v in rows] == [1, 2]
    for v in rows:
        assert v["lost"] == 0 and v["wrong_action"] == 0 and v["completed"] > 0
        assert v["server_cpu_us_per_call"] > 0 and v["driver_cpu_us_per_call"] > 0
        assert {"pg_cpu_us_per_call", "redis_cpu_us_per_call", "rest_of_box_cores"} <= set(v)
    (bound,) = result["workers"]["bounds"]
    assert set(bound) >= {"ratio", "s1_us", "s2_us", "driver_us", "pg_redis_us", "bound",
                          "efficiency"}
    assert 0 < bound["bound"] <= 2


async def test_callpath_lean_toy() -> None:
    result = await callpath.run(rounds=1, calls=150, max_seconds=20, only="lean")
    assert result["params"]["lean_log_level"] == "INFO"  # privnum logs as shipped
    for c in ("C=100", "C=10"):
        lean = result["lean"][c]
        floor, route = lean["rounds"]
        assert floor["lost"] == route["lost"] == 0 and route["wrong_action"] == 0
        assert route["server_cores_used"] > 0 and floor["server_cores_used"] > 0
        assert lean["cpu_bounds"] == [callpath.cpu_bound(floor, route)]
        assert lean["cpu_bounds"][0] == pytest.approx(
            floor["server_cpu_us_per_call"] / route["server_cpu_us_per_call"], abs=1e-3)
        # the writer's backlog at the end is reported: a toy run fits in one linger, so up
        # to every call of it (50 warm-up calls and 150 measured) may still be queued
        assert 0 <= route["server_stats"]["attempts_queued_at_stop"] <= 200
        assert "attempts_queued_at_stop" not in floor["server_stats"]
    assert callpath.cpu_bound({"server_cpu_us_per_call": 200},
                              {"server_cpu_us_per_call": 400}) == 0.5
    assert callpath.cpu_bound({}, {"server_cpu_us_per_call": 400}) == 0.0
