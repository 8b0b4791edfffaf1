"""Quarantine over HTTP: the platform's credential only; bad input is a problem, not a 500."""

from __future__ import annotations

from tests.api.conftest import Env, assert_problem, x_number


async def test_platform_quarantines_and_releases(env: Env) -> None:
    x = x_number(1)
    r = await env.call("POST", f"/v1/pool/{x}/quarantine", "admin",
                       json={"reason": "complaints"})
    assert r.status_code == 200, r.text
    assert r.json() == {"number": x, "state": "quarantined", "changed": True,
                        "reason": "complaints", "active_bindings": 0}
    r = await env.call("POST", f"/v1/pool/{x}/release-quarantine", "admin")
    assert r.status_code == 200 and r.json()["state"] == "available"
    assert_problem(await env.call("POST", f"/v1/pool/{x}/release-quarantine", "admin"), 409)


async def test_shop_credentials_may_not_and_bad_input_is_clear(env: Env) -> None:
    x = x_number(2)
    assert_problem(await env.call("POST", f"/v1/pool/{x}/quarantine", "main",
                                  json={"reason": "x"}), 403)
    for body in ({"reason": "   "}, {}, {"reason": "x" * 201}):
        assert_problem(await env.call("POST", f"/v1/pool/{x}/quarantine", "admin", json=body),
                       422)
    assert_problem(await env.call("POST", "/v1/pool/+8617099999999/quarantine", "admin",
                                  json={"reason": "x"}), 404)
