"""Idempotency-Key through the HTTP API, on SQLite and PostgreSQL: a repeat gets the kept
response and runs nothing; another request under the same key is refused; keys are per
credential; they end after their time (the test's clock, never today's date) and are purged;
every POST route of the app honours the header, routes added later included."""

from __future__ import annotations

import asyncio
import re
import uuid

import fastapi.routing
from fastapi import FastAPI
from sqlalchemy import func, select

from api.app import create_app
from binding_store.idempotency_models import IdempotencyKey
from routing.risk import RiskPolicy
from tests.api.conftest import (
    BUYER,
    SHOP,
    SUB2,
    SUB2_PHONE,
    Env,
    assert_problem,
    reveal_body,
)

KEY = "Idempotency-Key"


def new_key() -> str:
    return str(uuid.uuid4())


async def keys_stored(env: Env) -> int:
    async with env.db.session() as session:
        return int((await session.execute(
            select(func.count()).select_from(IdempotencyKey))).scalar_one())


def add_sub2(key: str) -> dict[str, object]:
    return {"json": {"number": SUB2_PHONE, "account_id": SUB2}, "headers": {KEY: key}}


async def test_a_repeat_gets_the_kept_response_and_runs_nothing(ready: Env) -> None:
    key = new_key()
    first = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main", **add_sub2(key))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main", **add_sub2(key))
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["content-type"] == first.headers["content-type"]
    # Run again without the key, the same request is refused: the repeat above never ran.
    unkeyed = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main",
                               json={"number": SUB2_PHONE, "account_id": SUB2})
    assert unkeyed.status_code == 409, unkeyed.text
    # Spacing and key order do not make a different request.
    text = f'{{ "account_id": "{SUB2}",   "number": "{SUB2_PHONE}" }}'
    spaced = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main", content=text,
                              headers={KEY: key, "Content-Type": "application/json"})
    assert spaced.status_code == 201 and spaced.headers["idempotent-replayed"] == "true"


async def test_the_same_key_with_another_request_is_refused(ready: Env) -> None:
    key = new_key()
    first = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main", **add_sub2(key))
    assert first.status_code == 201
    other_body = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main",
                                  json={"number": "+8613800000004"}, headers={KEY: key})
    assert_problem(other_body, 422, "idempotency_key_reused")
    other_path = await ready.call("POST", f"/v1/shops/{SHOP}/service/disable", "main",
                                  headers={KEY: key})
    assert_problem(other_path, 422, "idempotency_key_reused")
    # The account acted for is part of the request.
    other_header = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main",
                                    headers={KEY: key, "X-Privnum-Account": SUB2},
                                    json={"number": SUB2_PHONE, "account_id": SUB2})
    assert_problem(other_header, 422, "idempotency_key_reused")
    # The shop is still enabled: the refused requests did nothing.
    status = await ready.call("GET", f"/v1/shops/{SHOP}/service", "main")
    assert status.json()["service_state"] == "enabled"


async def test_keys_are_per_credential(ready: Env) -> None:
    key = new_key()
    first = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main", **add_sub2(key))
    assert first.status_code == 201
    # The admin's request under the same key is its own: it runs (and is refused, the number
    # being a caller already), it is not the main account's kept response.
    admin = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "admin", **add_sub2(key))
    assert admin.status_code == 409, admin.text
    assert "idempotent-replayed" not in admin.headers
    assert await keys_stored(ready) == 2


async def test_a_key_ends_after_its_time_and_is_purged(ready: Env) -> None:
    key = new_key()
    first = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main", **add_sub2(key))
    assert first.status_code == 201
    ready.clock.advance(hours=23, minutes=59)
    kept = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main", **add_sub2(key))
    assert kept.headers.get("idempotent-replayed") == "true"
    cases = ready.services.use_cases
    assert await cases.idempotency.purge(ready.clock.now) == 0
    ready.clock.advance(minutes=2)
    assert await cases.idempotency.purge(ready.clock.now) == 1
    assert await keys_stored(ready) == 0
    # After its time the key is new again: the request runs (and is refused: done before).
    ran = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main", **add_sub2(key))
    assert ran.status_code == 409 and "idempotent-replayed" not in ran.headers


async def test_an_expired_key_is_taken_over_without_a_purge(ready: Env) -> None:
    key = new_key()
    body = {"json": {"number": "+8613800000004"}, "headers": {KEY: key}}
    first = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main", **body)
    ready.clock.advance(hours=25)
    other = await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main", **add_sub2(key))
    assert other.status_code == 201, (first.text, other.text)
    assert await keys_stored(ready) == 1


async def test_bad_keys_and_missing_credentials(ready: Env) -> None:
    for bad in (b"x" * 256, b"has space", "ключ".encode()):
        response = await ready.client.post(
            f"/v1/shops/{SHOP}/service/disable",
            headers=[*ready.auth("main").items(), (KEY, bad)])  # type: ignore[list-item]
        assert_problem(response, 422, "invalid_idempotency_key")
        assert bad.decode() not in response.text
    # No credential: 401 as without a key, and nothing is kept.
    response = await ready.call("POST", f"/v1/shops/{SHOP}/service/disable",
                                headers={KEY: new_key()})
    assert_problem(response, 401, "unauthenticated")
    assert await keys_stored(ready) == 0
    status = await ready.call("GET", f"/v1/shops/{SHOP}/service", "main")
    assert status.json()["service_state"] == "enabled"


async def test_a_refusal_that_says_try_again_is_not_kept(ready: Env) -> None:
    """A 5xx (here: no AMI, click-to-call unavailable) is not kept: the repeat runs."""
    ready.services.policy = RiskPolicy(privacy_only_levels=frozenset({"L0", "L1"}))
    reveal = await ready.call("POST", "/v1/orders/o-1/reveal", "main", json=reveal_body())
    assert reveal.json()["decision"] == "privacy", reveal.text
    path = f"/v1/bindings/{reveal.json()['binding_id']}/call"
    key = new_key()
    first = await ready.call("POST", path, "main", headers={KEY: key})
    assert_problem(first, 503, "click_to_call_unavailable")
    again = await ready.call("POST", path, "main", headers={KEY: key})
    assert_problem(again, 503, "click_to_call_unavailable")
    assert "idempotent-replayed" not in again.headers
    assert await keys_stored(ready) == 0


async def test_concurrent_repeats_run_once(ready: Env) -> None:
    key = new_key()
    path = f"/v1/shops/{SHOP}/callers"
    answers = await asyncio.gather(*(ready.call("POST", path, "main", **add_sub2(key))
                                     for _ in range(6)))
    ran = [r for r in answers if r.status_code == 201
           and "idempotent-replayed" not in r.headers]
    assert len(ran) == 1, [(r.status_code, r.text) for r in answers]
    for r in answers:
        if r is ran[0]:
            continue
        if r.status_code == 409:
            assert_problem(r, 409, "idempotency_key_in_use")
            assert r.headers["retry-after"] == "1"
        else:
            assert r.headers["idempotent-replayed"] == "true" and r.json() == ran[0].json()
    callers = await ready.call("GET", path, "main")
    assert [c["number"] for c in callers.json()["callers"]].count(SUB2_PHONE) == 1


async def test_a_plaintext_reveal_is_replayed_without_spending_quota_again(ready: Env) -> None:
    key = new_key()
    first = await ready.call("POST", "/v1/orders/o-9/reveal", "sub", json=reveal_body(),
                             headers={KEY: key})
    assert first.status_code == 200, first.text
    again = await ready.call("POST", "/v1/orders/o-9/reveal", "sub", json=reveal_body(),
                             headers={KEY: key})
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    if first.json()["decision"] == "plaintext":
        assert first.json()["buyer_number"] == BUYER
        used = await ready.services.counters.quota_used(SHOP, first.json()["quota"]["resets_at"]
                                                        [:10])
        assert used <= 1
    # Neither the key, the request's buyer number nor the response is stored readable.
    async with ready.db.session() as session:
        rows = (await session.execute(select(IdempotencyKey))).scalars().all()
    assert len(rows) == 1
    stored = repr([(r.key_digest, r.request_digest, r.body) for r in rows])
    digits = BUYER.removeprefix("+86")
    assert key not in stored and digits not in stored and "plaintext" not in stored


def post_routes(app: FastAPI) -> list[str]:
    """The path of every POST route of the app, documented or not."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = list(contexts(app.routes)) if contexts is not None else app.routes
    return sorted({str(r.path_format) for r in routes
                   if "POST" in (getattr(r, "methods", None) or ())})


async def test_every_post_route_honours_the_key(ready: Env) -> None:
    posts = post_routes(create_app(ready.services))
    assert len(posts) >= 8, posts
    for template in posts:
        key = new_key()
        path = re.sub(r"\{[^}]+\}", "idem-1", template)
        body = {"probe": True}  # refused by every body model: a 422 that is kept
        first = await ready.call("POST", path, "admin", json=body, headers={KEY: key})
        assert first.status_code < 500, (path, first.text)
        again = await ready.call("POST", path, "admin", json=body, headers={KEY: key})
        assert again.headers.get("idempotent-replayed") == "true", (path, again.text)
        assert (again.status_code, again.content) == (first.status_code, first.content), path
        other = await ready.call("POST", path, "admin", json={"probe": False},
                                 headers={KEY: key})
        assert_problem(other, 422, "idempotency_key_reused")


async def test_replays_carry_the_request_id(ready: Env) -> None:
    key = new_key()
    await ready.call("POST", f"/v1/shops/{SHOP}/callers", "main", **add_sub2(key))
    again = await ready.client.post(
        f"/v1/shops/{SHOP}/callers", json={"number": SUB2_PHONE, "account_id": SUB2},
        headers={**ready.auth("main"), KEY: key, "X-Request-Id": "req-abc-1"})
    assert again.headers["x-request-id"] == "req-abc-1"
