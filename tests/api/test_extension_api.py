"""Extension mode over HTTP: a reveal that overflows into an extension number shows X with
its extension (display form, dial string); the shipping-phone check knows X written with an
extension."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest

from binding_store.db import Database
from binding_store.extension_store import ExtensionPool
from binding_store.pool import PoolRepository
from routing.extensions import NumberMode
from routing.risk import RiskPolicy
from tests.api.conftest import BUYER, Env, enable_shops, make_env, reveal_body

X = "+8617100000001"


@pytest.fixture
async def env_ext(database: Database, tmp_path: Path) -> AsyncIterator[Env]:
    """A pool holding one extension number only: every reveal overflows into it."""
    env = await make_env(database, tmp_path, pool_size=0)
    report = await PoolRepository(database).import_csv(["number", "17100000001"],
                                                       now=env.clock.now)
    assert report.inserted == 1
    await ExtensionPool(database).set_mode(X, NumberMode.EXTENSION, 4, actor="op",
                                           now=env.clock.now)
    await enable_shops(env)
    env.services.policy = RiskPolicy(privacy_only_levels=frozenset({"L0", "L1"}))
    yield env
    await env.client.aclose()


async def test_reveal_shows_x_with_its_extension(env_ext: Env) -> None:
    env = env_ext
    r = await env.call("POST", "/v1/orders/o-1/reveal", "sub", json=reveal_body())
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["decision"], got["virtual_number"], got["x"], got["extension"]) == (
        "privacy", X, X, "0000")
    assert got["display"] == "171 0000 0001 ext. 0000"
    assert got["dial_string"] == "17100000001,0000"
    assert BUYER not in r.text
    shown = await env.call("GET", f"/v1/bindings/{got['binding_id']}", "main")
    if shown.status_code == 200:
        assert (shown.json()["extension"], shown.json()["display"]) == (
            "0000", "171 0000 0001 ext. 0000")


@pytest.mark.parametrize("written", [
    "17100000001", "171 0000 0001 ext. 1234", "17100000001,1234", "171000000011234",
    "+8617100000001转12",
])
async def test_shipping_check_knows_x_with_an_extension(env_ext: Env, written: str) -> None:
    check = await env_ext.call("GET", f"/v1/numbers/{quote(written)}/virtual", "main")
    assert check.status_code == 200, check.text
    assert check.json() == {"number": X, "virtual": True}


async def test_an_ordinary_number_stays_ordinary(env_ext: Env) -> None:
    check = await env_ext.call("GET", f"/v1/numbers/{BUYER}/virtual", "main")
    assert check.json()["virtual"] is False
