"""The risk policy through the API and the real counters: L0, quota, velocity, midnight."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy import select, text

from binding_store.models import AuditEvent
from routing.risk import RiskPolicy, quota_period
from tests.api.conftest import BUYER, Env, assert_problem, enable_shops, reveal_body


async def _reveal(env: Env, order: str, who: str = "main", **extra: object) -> dict[str, object]:
    r = await env.call("POST", f"/v1/orders/{order}/reveal", who, json=reveal_body(**extra))
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


async def test_l0_shop_never_gets_plaintext(env: Env) -> None:
    await enable_shops(env, level="L0")
    body = await _reveal(env, "o-1")
    assert (body["decision"], body["rule"]) == ("privacy", "shop_level")
    assert body["buyer_number"] is None


async def test_quota_exhaustion_then_privacy_then_midnight_reset(ready: Env) -> None:
    env = ready
    env.services.policy = RiskPolicy(daily_plaintext_quota=2, timezone="Asia/Shanghai")
    env.clock.now = datetime(2026, 11, 28, 15, 50, tzinfo=UTC)  # 23:50 in Shanghai
    decisions = [(await _reveal(env, f"o-{i}"))["decision"] for i in range(4)]
    assert decisions == ["plaintext", "plaintext", "privacy", "privacy"]
    last = await _reveal(env, "o-9")
    assert last["rule"] == "daily_quota"
    env.clock.now = datetime(2026, 11, 28, 16, 0, 1, tzinfo=UTC)  # 00:00:01 next local day
    fresh = await _reveal(env, "o-10")
    assert fresh["decision"] == "plaintext"
    quota = fresh["quota"]
    assert isinstance(quota, dict) and quota["used"] == 1
    assert quota["resets_at"] == "2026-11-29T16:00:00Z"


async def test_privacy_reveals_never_consume_quota(ready: Env) -> None:
    env = ready
    env.services.policy = RiskPolicy(daily_plaintext_quota=1, plaintext_max_order_age_days=7)
    old = "2026-01-01T00:00:00+00:00"
    for i in range(3):
        body = await _reveal(env, f"old-{i}", order_created_at=old)
        assert (body["decision"], body["rule"]) == ("privacy", "order_age")
    body = await _reveal(env, "new-1", order_created_at="2026-11-27T00:00:00+08:00")
    assert body["decision"] == "plaintext"


async def test_velocity_refuses_with_429_and_is_per_account(ready: Env) -> None:
    env = ready
    env.services.policy = RiskPolicy(velocity_limit=3, velocity_window_seconds=600)
    for i in range(3):
        await _reveal(env, f"o-{i}")
    r = await env.call("POST", "/v1/orders/o-4/reveal", "main", json=reveal_body())
    assert_problem(r, 429, "reveal_rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert (await _reveal(env, "o-5", who="sub"))["decision"] in {"plaintext", "privacy"}
    env.clock.advance(seconds=600)
    assert (await _reveal(env, "o-6"))["decision"] == "plaintext"
    async with env.db.session() as session:
        kinds = (await session.scalars(select(AuditEvent.kind).where(
            AuditEvent.kind.like("reveal.%")))).all()
    assert kinds.count("reveal.refused") == 1


async def test_every_reveal_is_audited_without_plaintext(ready: Env) -> None:
    env = ready
    env.services.policy = RiskPolicy(daily_plaintext_quota=1)
    await _reveal(env, "o-1")
    await _reveal(env, "o-2")
    async with env.db.session() as session:
        rows = (await session.scalars(select(AuditEvent).where(
            AuditEvent.kind.like("reveal.%")))).all()
    assert sorted(r.kind for r in rows) == ["reveal.plaintext", "reveal.privacy"]
    digits = BUYER.removeprefix("+86")
    assert all(digits not in r.detail for r in rows)


async def test_metrics_count_reveals_by_decision(ready: Env) -> None:
    env = ready
    env.services.policy = RiskPolicy(daily_plaintext_quota=1)
    await _reveal(env, "o-1")
    await _reveal(env, "o-2")
    text = (await env.client.get("/metrics")).text
    assert 'privnum_reveals_total{decision="plaintext",rule="plaintext_allowed"} 1.0' in text
    assert 'privnum_reveals_total{decision="privacy",rule="daily_quota"} 1.0' in text
    assert 'privnum_allocations_total{result="created"} 1.0' in text
    assert "privnum_pool_total 20.0" in text
    assert "privnum_pool_in_use 1.0" in text
    health = (await env.client.get("/healthz")).json()
    assert health["status"] == "ok"
    assert {c["name"] for c in health["checks"]} == {"database", "redis", "ami", "fastagi"}


async def test_failed_plaintext_audit_gives_the_quota_unit_back(ready: Env) -> None:
    """No partial effect: if the audit write fails, the plaintext is not returned and the
    quota unit taken for it is given back (the database really refuses the write here)."""
    env = ready
    env.services.policy = RiskPolicy(daily_plaintext_quota=5)
    assert (await env.register("o-1", "shop-1")).status_code == 201
    async with env.db.engine.begin() as conn:
        await conn.execute(text("DROP TABLE audit_events"))
    transport = httpx.ASGITransport(app=env.client._transport.app,  # type: ignore[attr-defined]
                                    raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://privnum.test") as raw:
        r = await raw.post("/v1/orders/o-1/reveal", json=reveal_body(), headers=env.auth("main"))
    # SQLite reports a missing table as OperationalError (store unavailable), PostgreSQL as a
    # programming error (internal): either way a problem, and nothing left behind.
    assert_problem(r, r.status_code, {500: "internal_error", 503: "store_unavailable"}.get(
        r.status_code, "?"))
    assert BUYER.removeprefix("+86") not in r.text
    day = quota_period(env.services.policy, "L1", env.clock.now).key
    assert await env.services.counters.quota_used("shop-1", day) == 0
