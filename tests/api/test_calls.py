"""Call records over HTTP, on the call-log engineer's store and the recorded AMI session."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import update
from starlette.types import Message

from api import call_log_csv
from binding_store.call_log import CallLogStore
from binding_store.db import Database
from binding_store.models import CallAttempt
from tests.api.conftest import Env, assert_problem, make_env
from tests.fixtures.ami.scenario import (
    ALL_CALLS,
    FORBIDDEN,
    NOW,
    SHOP,
    UID_BRIDGED_9001,
    UID_SIP,
    cdr_events,
    seed,
)

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


async def test_no_link_is_shown_unless_its_template_is_configured(
        database: Database, tmp_path: Path) -> None:
    env = await make_env(database, tmp_path, links=False)
    try:
        await _seeded(env)
        calls = (await env.call("GET", f"/v1/shops/{SHOP}/calls", "main")).json()["calls"]
        assert any(c["order_id"] for c in calls)
        assert {(c["order_link"], c["chat_link"]) for c in calls} == {("", "")}
        export = (await env.call("GET", f"/v1/shops/{SHOP}/calls/export", "main")).text
        assert "example" not in export and "http" not in export
    finally:
        await env.client.aclose()


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
    # shop-2 never enabled the service: it does not exist, for its own token too
    assert_problem(await env.call("GET", "/v1/shops/shop-2/calls", "other"), 404, "not_found")
    assert_problem(await env.call("GET", "/v1/shops/nosuch/calls", "admin"), 404, "not_found")


async def test_export_streams_in_pieces_with_utc_z_or_the_shops_zone(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    await _seeded(env)
    monkeypatch.setattr(call_log_csv, "CHUNK_BYTES", 1)  # a piece per row
    sent: list[Message] = []
    requested, done = [False], asyncio.Event()

    async def receive() -> Message:
        if not requested[0]:
            requested[0] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays until the whole response is in
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": f"/v1/shops/{SHOP}/calls/export",
             "raw_path": f"/v1/shops/{SHOP}/calls/export".encode(), "query_string": b"",
             "root_path": "", "server": ("privnum.test", 80), "client": ("127.0.0.1", 1),
             "headers": [(b"host", b"privnum.test"),
                         (b"authorization", env.auth("main")["Authorization"].encode())]}
    await env.client._transport.app(scope, receive, send)  # type: ignore[attr-defined]
    pieces = [m for m in sent if m["type"] == "http.response.body"]
    # The header and each row left as a piece of its own, before the next row was read.
    assert len(pieces) >= SHOP_CALLS + 1 and all(p["more_body"] for p in pieces[:-1])
    text = b"".join(p["body"] for p in pieces).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == SHOP_CALLS
    assert all(r["started_at"].endswith("Z") and "+00:00" not in r["started_at"] for r in rows)

    local = await env.call("GET", f"/v1/shops/{SHOP}/calls/export", "main",
                           params={"tz": "shop"})
    starts = [r["started_at"] for r in csv.DictReader(io.StringIO(local.text))]
    assert starts and all(s.endswith("+08:00") for s in starts)  # Asia/Shanghai by default
    unknown = await env.call("GET", "/v1/shops/nosuch/calls/export", "admin")
    assert_problem(unknown, 404)


async def test_calls_show_the_extension_and_the_export_ends_with_it(env: Env) -> None:
    await seed(env.db)
    await CallLogStore(env.db).write_batch(
        [replace(e, pn_ext="0042") if e.uniqueid == UID_SIP else e for e in cdr_events()])
    env.clock.now = NOW
    calls = (await env.call("GET", f"/v1/shops/{SHOP}/calls", "main")).json()["calls"]
    with_ext = [c for c in calls if c["extension"]]
    assert [c["extension"] for c in with_ext] == ["0042"]
    assert with_ext[0]["display"].endswith(" ext. 0042")
    assert all(c["extension"] is None and "ext." not in c["display"]
               for c in calls if c not in with_ext)
    export = (await env.call("GET", f"/v1/shops/{SHOP}/calls/export", "main")).text
    header, *rows = list(csv.reader(io.StringIO(export)))
    assert header[-2:] == ["extension", "mark"]
    assert sorted(r[-2] for r in rows) == [""] * (len(rows) - 1) + ["0042"]


async def test_calls_show_the_call_rule_mark_and_the_export_ends_with_it(env: Env) -> None:
    await seed(env.db)
    async with env.db.session() as s:  # the 9001 callback was let through in the grace window
        await s.execute(update(CallAttempt).where(CallAttempt.uniqueid == UID_BRIDGED_9001)
                        .values(mark="grace"))
        await s.commit()
    await CallLogStore(env.db).write_batch(cdr_events())
    env.clock.now = NOW
    calls = (await env.call("GET", f"/v1/shops/{SHOP}/calls", "main")).json()["calls"]
    assert sorted((c["mark"] or "") for c in calls) == [""] * (len(calls) - 1) + ["grace"]
    graced = next(c for c in calls if c["mark"])
    assert (graced["outcome"], graced["reason"]) == ("answered", "bridged")
    export = (await env.call("GET", f"/v1/shops/{SHOP}/calls/export", "main")).text
    header, *rows = list(csv.reader(io.StringIO(export)))
    assert header[-1] == "mark"
    assert sorted(r[-1] for r in rows) == [""] * (len(rows) - 1) + ["grace"]
