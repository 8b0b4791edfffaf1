"""Who may do what (routing/usecases/access.py): one table for every front door."""

from __future__ import annotations

import pytest

from routing.api_ports import Principal, PrincipalKind
from routing.errors import NotFound, PermissionDenied, ServiceNotEnabled
from routing.model import AccountRole
from routing.usecases.access import in_shop, main_only, owned, platform_only, shop_account

ADMIN = Principal(kind=PrincipalKind.PLATFORM, token_id="t0")
OPERATOR = Principal.operator("ops")
MAIN = Principal(kind=PrincipalKind.ACCOUNT, token_id="t1", shop_id="s1", account_id="m1",
                 role=AccountRole.MAIN)
SUB = Principal(kind=PrincipalKind.ACCOUNT, token_id="t2", shop_id="s1", account_id="u1",
                role=AccountRole.SUB)
NEW_MAIN = Principal(kind=PrincipalKind.ACCOUNT, token_id="t3", shop_id="s1", account_id="m1")


@pytest.mark.parametrize(("who", "shop", "allowed"), [
    (ADMIN, "s1", True), (OPERATOR, "s9", True), (MAIN, "s1", True), (SUB, "s1", True),
    (MAIN, "s2", False), (SUB, "s2", False),
])
def test_in_shop_and_owned(who: Principal, shop: str, allowed: bool) -> None:
    if allowed:
        in_shop(who, shop)
        owned(who, shop, "binding")
        return
    with pytest.raises(PermissionDenied, match="another shop"):
        in_shop(who, shop)
    with pytest.raises(NotFound, match="binding not found"):  # ids do not leak across shops
        owned(who, shop, "binding")


@pytest.mark.parametrize(("who", "allowed"), [
    (ADMIN, True), (OPERATOR, True), (MAIN, True), (SUB, False),
])
def test_main_only(who: Principal, allowed: bool) -> None:
    if allowed:
        main_only(who, "s1", "change caller numbers")
    else:
        with pytest.raises(PermissionDenied, match="only the shop's main account may change"):
            main_only(who, "s1", "change caller numbers")


def test_platform_only_and_shop_account() -> None:
    platform_only(ADMIN, "issue tokens")
    platform_only(OPERATOR, "issue tokens")
    with pytest.raises(PermissionDenied, match="only the platform may issue tokens"):
        platform_only(MAIN, "issue tokens")
    assert shop_account(SUB, "a reveal") == ("s1", "u1")
    for who in (ADMIN, OPERATOR):
        with pytest.raises(PermissionDenied, match="a reveal is made by a shop account"):
            shop_account(who, "a reveal")
    with pytest.raises(ServiceNotEnabled):  # an account token before the shop enabled
        shop_account(NEW_MAIN, "a reveal")


def test_the_audit_names_who_acted() -> None:
    assert ADMIN.actor == "platform:t0"
    assert MAIN.actor == "m1"
    assert OPERATOR.actor == "ops"
    assert Principal.operator(acting_as="clerk").actor == "cli>clerk"
