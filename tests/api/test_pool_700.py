"""700 numbers over HTTP: issued as X, recognised by the shipping-phone check, shown in the
call log and its export; never accepted as a buyer or caller number."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path

import pytest

from agi.ami_cdr import cdr_from_ami
from binding_store.call_log import CallLogStore
from binding_store.db import Database
from binding_store.pool import PoolRepository
from routing.risk import RiskPolicy
from tests.api.conftest import (
    BUYER,
    SHOP,
    SUB_PHONE,
    Env,
    assert_problem,
    enable_shops,
    make_env,
    reveal_body,
)

X700 = ("+86700000000000001", "+86700000000000002")


@pytest.fixture
async def env700(database: Database, tmp_path: Path) -> AsyncIterator[Env]:
    """Enabled shops and a pool of 700 numbers only (after the transition)."""
    env = await make_env(database, tmp_path, pool_size=0)
    report = await PoolRepository(database).import_csv(
        ["number,region", "700000000000001,n700", "86700000000000002,n700"], now=env.clock.now)
    assert report.inserted == 2
    await enable_shops(env)
    env.services.policy = RiskPolicy(privacy_only_levels=frozenset({"L0", "L1"}))
    yield env
    await env.client.aclose()


async def test_reveal_issues_a_700_x_and_the_shipping_check_knows_it(env700: Env) -> None:
    env = env700
    r = await env.call("POST", "/v1/orders/o-1/reveal", "sub", json=reveal_body())
    assert r.status_code == 200, r.text
    issued = r.json()
    assert issued["decision"] == "privacy" and issued["virtual_number"] in X700
    assert issued["caller_number"] == SUB_PHONE and BUYER not in r.text
    national = issued["virtual_number"].removeprefix("+86")
    for form in (national, issued["virtual_number"], "86" + national, "0086" + national):
        check = await env.call("GET", f"/v1/numbers/{form}/virtual", "main")
        assert check.status_code == 200, check.text
        assert check.json() == {"number": issued["virtual_number"], "virtual": True}
    stranger = await env.call("GET", "/v1/numbers/700999999999999/virtual", "main")
    assert stranger.json() == {"number": "+86700999999999999", "virtual": False}
    buyer = await env.call("GET", f"/v1/numbers/{BUYER}/virtual", "main")
    assert buyer.json() == {"number": BUYER, "virtual": False}
    short = await env.call("GET", "/v1/numbers/70000000000000/virtual", "main")  # 14 digits
    assert_problem(short, 422, "invalid_number")


async def test_a_700_number_is_never_a_buyer_or_a_caller(env700: Env) -> None:
    env = env700
    for number in ("700000000000009", "+86700000000000009"):
        r = await env.call("POST", "/v1/orders/o-2/reveal", "main", json=reveal_body(number))
        assert_problem(r, 422, "invalid_number")
        c = await env.call("POST", f"/v1/shops/{SHOP}/callers", "main",
                           json={"number": number})
        assert_problem(c, 422)
        assert "700000000000009" not in r.text + c.text  # masked in the problem detail


async def test_call_log_and_export_carry_the_700_x(env700: Env) -> None:
    env = env700
    issued = (await env.call("POST", "/v1/orders/o-3/reveal", "main",
                             json=reveal_body())).json()
    x = issued["virtual_number"]
    # the record of a call A made to X, as Asterisk's cdr_manager reports it
    headers = {"UniqueID": "pbx-1.1", "LinkedID": "pbx-1.1", "StartTime": "2026-11-28 06:00:00",
               "AnswerTime": "2026-11-28 06:00:05", "EndTime": "2026-11-28 06:00:35",
               "Duration": "35", "BillableSeconds": "30", "Disposition": "ANSWERED",
               "LastApplication": "Dial", "Source": issued["caller_number"].removeprefix("+86"),
               "Destination": x.removeprefix("+86"), "PnBinding": issued["binding_id"],
               "PnShop": SHOP, "PnOrder": "o-3", "PnX": x, "PnReason": "bridged",
               "PnDirection": "merchant", "PnCaller": issued["caller_number"]}
    assert await CallLogStore(env.db).write_batch([cdr_from_ami(headers, UTC)]) == 1
    env.clock.advance(minutes=5)  # the call ended at 06:00:35
    calls = (await env.call("GET", f"/v1/shops/{SHOP}/calls", "main")).json()["calls"]
    assert [(c["virtual_number"], c["buyer_masked"]) for c in calls] == [(x, "139****0001")]
    export = await env.call("GET", f"/v1/shops/{SHOP}/calls/export", "main")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["virtual_number"], r["buyer_masked"]) for r in rows] == [(x, "139****0001")]
    assert BUYER.removeprefix("+86") not in export.text
