"""Call records over HTTP, on the call-log engineer's store and the recorded AMI session."""

from __future__ import annotations

import csv
import io

from binding_store.call_log import CallLogStore
from tests.api.conftest import Env, assert_problem
from tests.fixtures.ami.scenario import ALL_CALLS, FORBIDDEN, NOW, SHOP, cdr_events, seed

SHOP_CALLS = ALL_CALLS - 1  # the call made while the routing service was down has no shop


async def _seeded(env: Env) -> None:
    await seed(env.db)
    await CallLogStore(env.db).write_batch(cdr_events())
    env.clock.now = NOW


async def test_shop_lists_its_calls_masked_with_links_and_pages(env: Env) -> None:
    await _seeded(env)
    r = await env.call("GET", f"/v1/shops/{SHOP}/calls", "main")
    assert r.status_code == 200, r.text
    page = r.json()
    assert len(page["calls"]) == SHOP_CALLS
    assert all(digits not in r.text for digits in FORBIDDEN)
    linked = [c for c in page["calls"] if c["order_id"]]
    assert linked and all(c["order_link"].endswith(c["order_id"]) for c in linked)
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        part = (await env.call("GET", f"/v1/shops/{SHOP}/calls", "sub", params=params)).json()
        seen += [c["id"] for c in part["calls"]]
        cursor = part["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(c["id"] for c in page["calls"])


async def test_export_is_csv_without_plaintext(env: Env) -> None:
    await _seeded(env)
    r = await env.call("GET", f"/v1/shops/{SHOP}/calls/export", "main")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == SHOP_CALLS
    assert all(digits not in r.text for digits in FORBIDDEN)


async def test_call_log_limits_and_isolation(env: Env) -> None:
    await _seeded(env)
    too_old = await env.call("GET", f"/v1/shops/{SHOP}/calls", "main",
                             params={"since": "2026-10-01T00:00:00Z"})
    assert_problem(too_old, 422, "invalid_call_log_query")
    naive = await env.call("GET", f"/v1/shops/{SHOP}/calls/export", "main",
                           params={"since": "2026-11-28T00:00:00"})
    assert_problem(naive, 422, "invalid_call_log_query")
    bad = await env.call("GET", f"/v1/shops/{SHOP}/calls", "main", params={"cursor": "%%%"})
    assert_problem(bad, 422, "invalid_call_log_query")
    other = await env.call("GET", f"/v1/shops/{SHOP}/calls", "other")
    assert_problem(other, 403, "permission_denied")
    empty = (await env.call("GET", "/v1/shops/shop-2/calls", "other")).json()
    assert empty["calls"] == []
