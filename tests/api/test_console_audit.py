"""The console's exports for auditors: only the shops the credential is granted, with the
API's rules (another shop's export is refused to start and not found to read)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re

from sqlalchemy import insert, select, update

from binding_store.call_log import CallLogStore
from binding_store.cdr_models import Cdr
from binding_store.models import Shop
from binding_store.tokens import TokenStore
from binding_store.webhook_models import WebhookDelivery, WebhookEvent, WebhookSubscription
from routing.api_ports import PrincipalKind
from tests.api.conftest import OTHER, Env
from tests.api.test_console import assert_no_plaintext, sign_in
from tests.fixtures.ami.scenario import CALL_DAY, NOW, SHOP, cdr_events, seed

SAME_SITE = {"Origin": "http://privnum.test"}
WINDOW = {"since": "2026-11-27T00:00", "until": "2026-11-28T13:00", "fmt": "csv"}


async def _auditors(env: Env) -> None:
    await seed(env.db)
    async with env.db.session() as session:
        await session.execute(insert(Shop.__table__).values(
            id=OTHER, name="Other", level="L1", service_state="enabled", created_at=CALL_DAY,
            updated_at=CALL_DAY))
        await session.commit()
    await CallLogStore(env.db).write_batch(cdr_events())
    env.clock.now = NOW
    store = TokenStore(env.db)
    for name, shop in (("auditor", SHOP), ("auditor2", OTHER)):
        issued = await store.issue(now=NOW, kind=PrincipalKind.AUDITOR, shops=[shop])
        env.tokens[name] = issued.secret


async def _finished(env: Env, url: str) -> str:
    for _ in range(200):
        page = (await env.client.get(url)).text
        if 'id="export-state">running<' not in page:
            return page
        await asyncio.sleep(0.02)
    raise AssertionError("the export did not finish")


async def test_an_auditor_exports_and_verifies_its_own_shop(env: Env) -> None:
    await _auditors(env)
    await sign_in(env, "auditor")
    listing = await env.client.get("/console/exports")
    assert listing.status_code == 200
    assert f'<option value="{SHOP}">' in listing.text and OTHER not in listing.text
    r = await env.client.post("/console/exports", headers=SAME_SITE, data={**WINDOW,
                                                                           "shop": SHOP})
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    page = await _finished(env, url)
    assert 'id="export-state">done<' in page and 'id="chain-result"' in page
    assert_no_plaintext(page)
    body = await env.client.get(f"{url}/file")
    rows = list(csv.DictReader(io.StringIO(body.text)))
    assert rows and {row["shop_id"] for row in rows} == {SHOP}
    assert_no_plaintext(body.text)
    manifest = (await env.client.get(f"{url}/manifest")).json()
    assert manifest["shop_id"] == SHOP and manifest["rows"] == len(rows)
    assert json.loads(json.dumps(manifest))["numbers"] == "buyer numbers masked"


async def test_an_auditor_cannot_start_list_download_or_verify_another_shops(
        env: Env) -> None:
    await _auditors(env)
    await sign_in(env, "auditor")
    r = await env.client.post("/console/exports", headers=SAME_SITE, data={**WINDOW,
                                                                           "shop": SHOP})
    url = r.headers["location"]
    await _finished(env, url)
    await sign_in(env, "auditor2")
    for shop in (SHOP, ""):  # a shop not granted, or every shop's
        refused = await env.client.post("/console/exports", headers=SAME_SITE,
                                         data={**WINDOW, "shop": shop})
        assert refused.status_code == 403, refused.text
    listing = (await env.client.get("/console/exports")).text
    assert "None yet." in listing and url not in listing
    for path in (url, f"{url}/file", f"{url}/manifest"):
        assert (await env.client.get(path)).status_code == 404
    assert (await env.client.get("/console/operations")).status_code == 403
    # The platform sees every shop's exports.
    await sign_in(env, "admin")
    assert re.search(rf'href="{url}"', (await env.client.get("/console/exports")).text)


async def test_a_broken_chain_names_the_shop_and_position_of_each_finding(env: Env) -> None:
    await _auditors(env)
    async with env.db.session() as session:
        row_id, seq = (await session.execute(select(Cdr.id, Cdr.chain_seq)
                                             .order_by(Cdr.chain_seq).limit(1))).one()
        await session.execute(update(Cdr).where(Cdr.id == row_id).values(billsec=999))
        await session.commit()
    for who, shop, shown in (("auditor", SHOP, True), ("auditor2", OTHER, False)):
        await sign_in(env, who)
        r = await env.client.post("/console/exports", headers=SAME_SITE,
                                  data={**WINDOW, "shop": shop})
        page = await _finished(env, r.headers["location"])
        assert "The chain does NOT verify" in page
        finding = re.search(r'<tr><td>([^<]*)</td><td class="num">(\d+)</td><td>altered</td>',
                            page)
        if shown:
            assert finding is not None and finding.groups() == (SHOP, str(seq))
        else:  # another shop's finding: counted, never shown
            assert finding is None and SHOP not in page
            assert "1 finding(s) concern shops you do not audit" in page


async def test_an_auditor_reads_its_shops_call_log_only(env: Env) -> None:
    await _auditors(env)
    await sign_in(env, "auditor")
    home = await env.client.get("/console/", follow_redirects=True)
    assert home.status_code == 200
    assert f'href="/console/shops/{SHOP}/calls"' in home.text and OTHER not in home.text
    page = await env.client.get(f"/console/shops/{SHOP}/calls")
    assert page.status_code == 200, page.text
    call_id = re.findall(rf'/console/shops/{SHOP}/calls/(\d+)"', page.text)[0]
    detail = await env.client.get(f"/console/shops/{SHOP}/calls/{call_id}")
    assert detail.status_code == 200 and "Q.850 cause" in detail.text
    assert_no_plaintext(page.text + detail.text)
    assert (await env.client.get(f"/console/shops/{OTHER}/calls")).status_code == 403
    assert (await env.client.get(f"/console/shops/{OTHER}/calls/{call_id}")).status_code == 403


async def test_operations_lists_webhook_backlog_and_failed_deliveries(env: Env) -> None:
    await _auditors(env)
    async with env.db.session() as session:
        session.add(WebhookSubscription(id="sub-1", url="https://hooks.example/in",
                                        secret="s" * 32, created_at=NOW))
        for n, state in ((1, "dead"), (2, "pending")):
            session.add(WebhookEvent(id=n, event_id=f"ev-{n}", type="call.ended",
                                     stream="shop-1", shop_id=SHOP, created_at=NOW,
                                     payload="{}", dispatched_at=NOW))
            session.add(WebhookDelivery(subscription_id="sub-1", event_seq=n, stream="shop-1",
                                        state=state, attempts=8 if state == "dead" else 0,
                                        next_attempt_at=NOW, last_status=502,
                                        last_error="bad gateway", created_at=NOW))
        await session.commit()
    await sign_in(env, "admin")
    page = (await env.client.get("/console/operations")).text
    hooks = page[page.index('id="hooks-h"'):page.index('id="health-h"')]
    assert re.search(r"<dt>Deliveries waiting</dt><dd>1</dd>", hooks)
    assert re.search(r"<dt>Dead letters</dt><dd>1</dd>", hooks)
    assert ("<td>call.ended</td><td>sub-1</td><td class=\"num\">8</td><td>502</td>"
            "<td>bad gateway</td>") in hooks
