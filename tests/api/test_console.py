"""The web console over HTTP (without a browser): sessions, headers, scopes, pages."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import update

from binding_store.call_log import CallLogStore
from binding_store.extension_models import PoolExtension
from binding_store.models import CallAttempt, PoolNumber
from tests.api.conftest import Env
from tests.fixtures.ami.scenario import (
    FORBIDDEN,
    NOW,
    SHOP,
    UID_BRIDGED_9001,
    cdr_events,
    seed,
)


async def _seeded(env: Env) -> None:
    await seed(env.db)
    await CallLogStore(env.db).write_batch(cdr_events())
    env.clock.now = NOW


async def sign_in(env: Env, who: str) -> httpx.Response:
    r = await env.client.post("/console/sign-in", data={"token": env.tokens[who], "next": ""},
                              headers={"Origin": "http://privnum.test"})
    assert r.status_code == 303, r.text
    return r


def assert_no_plaintext(html: str) -> None:
    for raw in FORBIDDEN:
        assert raw not in html


async def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_it(env: Env) -> None:
    await _seeded(env)
    r = await sign_in(env, "main")
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=" in cookie
    assert "path=/console" in cookie
    assert env.tokens["main"] not in r.headers["set-cookie"]  # encrypted, not the token
    page = await env.client.get("/console/", follow_redirects=True)
    assert page.status_code == 200 and "Calls of" in page.text
    out = await env.client.post("/console/sign-out", headers={"Origin": "http://privnum.test"})
    assert out.status_code == 303
    again = await env.client.get(f"/console/shops/{SHOP}/calls")
    assert again.status_code == 303 and again.headers["location"].startswith(
        "/console/sign-in?next=")


async def test_a_wrong_token_is_refused_with_a_page(env: Env) -> None:
    r = await env.client.post("/console/sign-in", data={"token": "nope"},
                              headers={"Origin": "http://privnum.test"})
    assert r.status_code == 401 and "unknown, revoked or expired" in r.text
    assert "set-cookie" not in r.headers


async def test_a_forged_or_expired_cookie_signs_out(env: Env) -> None:
    await _seeded(env)
    await sign_in(env, "main")
    env.clock.advance(minutes=481)  # the default session is 480 minutes
    r = await env.client.get(f"/console/shops/{SHOP}/calls")
    assert r.status_code == 303
    env.client.cookies.set("privnum_console", "forged", path="/console")
    r = await env.client.get(f"/console/shops/{SHOP}/calls")
    assert r.status_code == 303


async def test_every_console_response_has_a_strict_csp_and_no_script(env: Env) -> None:
    await _seeded(env)
    for path in ("/console/sign-in", "/console/static/console.css"):
        r = await env.client.get(path)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert "unsafe-inline" not in csp
        assert r.headers["x-frame-options"] == "DENY"
    await sign_in(env, "admin")
    for path in (f"/console/shops/{SHOP}/calls", "/console/operations", "/console/exports"):
        html = (await env.client.get(path)).text
        assert "<script" not in html and "style=" not in html
        assert not re.search(r'(src|href)="(https?:)?//', html.replace(
            "https://shop.example.com/", ""))  # no CDN: only the shop's own links
        assert_no_plaintext(html)


async def test_a_cross_site_post_is_refused(env: Env) -> None:
    r = await env.client.post("/console/sign-in", data={"token": env.tokens["main"]},
                              headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


async def test_call_log_filters_detail_and_masked_numbers(env: Env) -> None:
    await _seeded(env)
    await sign_in(env, "main")
    page = (await env.client.get(f"/console/shops/{SHOP}/calls")).text
    assert "Asia/Shanghai" in page and "139****0001" in page
    assert "https://shop.example.com/orders/O-1" in page
    assert_no_plaintext(page)
    rejected = (await env.client.get(f"/console/shops/{SHOP}/calls",
                                     params={"outcome": "rejected"})).text
    ids = re.findall(rf'/console/shops/{SHOP}/calls/(\d+)"', rejected)
    outcomes = re.findall(r'<td data-label="Outcome">([^<]*)</td>', rejected)
    assert ids and outcomes and set(outcomes) == {"rejected"}
    detail = await env.client.get(f"/console/shops/{SHOP}/calls/{ids[0]}")
    assert detail.status_code == 200
    assert "Rejected" in detail.text and "Q.850 cause" in detail.text
    assert_no_plaintext(detail.text)
    bad = await env.client.get(f"/console/shops/{SHOP}/calls", params={"outcome": "x"})
    assert bad.status_code == 422 and "unknown value" in bad.text


@pytest.mark.parametrize("path", [f"/console/shops/{SHOP}/calls", "/console/operations",
                                  "/console/exports"])
async def test_a_shop_credential_cannot_reach_another_shops_or_platform_pages(
        env: Env, path: str) -> None:
    await _seeded(env)
    await sign_in(env, "other")
    r = await env.client.get(path)
    assert r.status_code == 403
    assert "<h1>Not allowed</h1>" in r.text


async def test_another_shops_call_is_not_found(env: Env) -> None:
    await _seeded(env)
    await sign_in(env, "main")
    page = (await env.client.get(f"/console/shops/{SHOP}/calls")).text
    call_id = re.findall(rf'/console/shops/{SHOP}/calls/(\d+)"', page)[0]
    await sign_in(env, "other")
    r = await env.client.get(f"/console/shops/shop-2/calls/{call_id}")
    assert r.status_code == 404


async def test_operations_page_draws_both_charts(env: Env) -> None:
    await _seeded(env)
    async with env.db.session() as session:
        session.add(PoolNumber(number="+8617099990001", region="east", mode="extension",
                               extension_length=1, created_at=NOW))
        await session.flush()
        session.add_all(PoolExtension(number="+8617099990001", extension=str(d))
                        for d in range(10))
        await session.commit()
    await sign_in(env, "admin")
    r = await env.client.get("/console/operations")
    assert r.status_code == 200, r.text
    assert r.text.count("<svg") == 4  # calls; pool by region, by mode; extension slots
    assert "Pool numbers by mode and state" in r.text and "east: slots free 10" in r.text
    modes = r.text[r.text.index('id="pool-modes"'):]
    assert re.search(r'<th scope="row">extension</th>(<td class="num">\d+</td>){5}'
                     r'<td class="num">0</td><td class="num">10</td>', modes)
    assert "bridged" in r.text and "rejected: number expired" in r.text
    assert "Components" in r.text and "database" in r.text


async def test_a_shop_cannot_start_an_export(env: Env) -> None:
    await _seeded(env)
    await sign_in(env, "main")
    r = await env.client.post("/console/exports", headers={"Origin": "http://privnum.test"},
                              data={"since": "2026-11-28T00:00", "until": "2026-11-28T13:00"})
    assert r.status_code == 403
    await sign_in(env, "admin")
    assert "None yet." in (await env.client.get("/console/exports")).text


async def test_a_bad_export_window_is_a_page_not_a_traceback(env: Env) -> None:
    await _seeded(env)
    await sign_in(env, "admin")
    same_site = {"Origin": "http://privnum.test"}
    r = await env.client.post("/console/exports", headers=same_site,
                              data={"since": "2026-11-28T13:00", "until": "2026-11-28T00:00"})
    assert r.status_code == 422 and "from must be before to" in r.text
    r = await env.client.post("/console/exports", headers=same_site,
                              data={"since": "yesterday", "until": "2026-11-28T00:00"})
    assert r.status_code == 422 and "not a date and time" in r.text
    assert (await env.client.get("/console/exports/nope")).status_code == 404


async def test_a_grace_call_says_so_on_the_list_and_its_page(env: Env) -> None:
    await seed(env.db)
    async with env.db.session() as s:  # the 9001 callback was let through in the grace window
        await s.execute(update(CallAttempt).where(CallAttempt.uniqueid == UID_BRIDGED_9001)
                        .values(mark="grace"))
        await s.commit()
    await CallLogStore(env.db).write_batch(cdr_events())
    env.clock.now = NOW
    await sign_in(env, "main")
    page = (await env.client.get(f"/console/shops/{SHOP}/calls")).text
    outcomes = re.findall(r'<td data-label="Outcome">([^<]*)</td>', page)
    assert outcomes.count("answered (grace)") == 1
    assert not [o for o in outcomes if "(" in o and o != "answered (grace)"]
    row, = (r for r in page.split("<tr>") if "answered (grace)" in r)
    call_id, = re.findall(rf'/console/shops/{SHOP}/calls/(\d+)"', row)
    detail = (await env.client.get(f"/console/shops/{SHOP}/calls/{call_id}")).text
    assert "<dd>answered (grace)</dd>" in detail
