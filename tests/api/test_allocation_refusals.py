"""When no virtual number can be allocated, the API says why: the caller's cool-down (503
with Retry-After and when the next number is free) or a really exhausted pool (503, import)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from binding_store.db import Database
from routing.risk import RiskPolicy
from tests.api.conftest import (
    BUYER,
    BUYER2,
    MAIN_PHONE,
    Env,
    assert_problem,
    enable_shops,
    make_env,
    reveal_body,
)

COOLDOWN_SECONDS = 3_600  # the settings' default ``bindings.cooldown_seconds``


@pytest.fixture
async def one_number(database: Database, tmp_path: Path) -> AsyncIterator[Env]:
    env = await make_env(database, tmp_path, pool_size=1,
                         policy=RiskPolicy(privacy_only_levels=frozenset({"L0", "L1"})))
    await enable_shops(env)
    yield env
    await env.client.aclose()


async def test_caller_cooling_down_is_503_with_retry_after(one_number: Env) -> None:
    env = one_number
    first = await env.call("POST", "/v1/orders/o-1/reveal", "main", json=reveal_body())
    assert first.status_code == 200, first.text
    assert first.json()["caller_number"] == MAIN_PHONE
    rel = await env.call("POST", f"/v1/bindings/{first.json()['binding_id']}/release", "main")
    assert rel.status_code == 200, rel.text
    env.clock.advance(minutes=15)

    r = await env.call("POST", "/v1/orders/o-2/reveal", "main", json=reveal_body(BUYER2))
    assert_problem(r, 503, "caller_cooling_down")
    assert r.headers["Retry-After"] == str(COOLDOWN_SECONDS - 15 * 60)
    detail = r.json()["detail"]
    assert "cool-down" in detail and "pool import" not in detail
    assert "2026-11-28 07:00:00 UTC" in detail  # released at 06:00, one hour of cool-down
    assert BUYER2 not in r.text and BUYER2[-8:] not in r.text

    env.clock.advance(seconds=COOLDOWN_SECONDS - 15 * 60)  # exactly when it said
    again = await env.call("POST", "/v1/orders/o-2/reveal", "main", json=reveal_body(BUYER2))
    assert again.status_code == 200, again.text


async def test_exhausted_pool_is_503_without_retry_after(one_number: Env) -> None:
    env = one_number
    r = await env.call("POST", "/v1/orders/o-1/reveal", "main", json=reveal_body())
    assert r.status_code == 200, r.text
    # the only X is busy with this caller: no wait helps, numbers must be imported
    busy = await env.call("POST", "/v1/orders/o-2/reveal", "main", json=reveal_body(BUYER2))
    assert_problem(busy, 503, "pool_exhausted")
    assert "Retry-After" not in busy.headers
    assert "pool import" in busy.json()["detail"]
    assert BUYER not in busy.text
