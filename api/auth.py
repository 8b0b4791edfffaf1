"""Bearer-token authentication and the authorization rules every route applies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.services import ApiServices
from routing.api_ports import Principal
from routing.errors import NotFound, PermissionDenied, Unauthenticated
from routing.model import AccountRole

bearer = HTTPBearer(auto_error=False, description="A shop-account or platform-admin token.")


def services(request: Request) -> ApiServices:
    svc = request.app.state.services
    assert isinstance(svc, ApiServices)
    return svc


Services = Annotated[ApiServices, Depends(services)]


async def principal(
    svc: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("a bearer token is required (Authorization: Bearer <token>)")
    who = await svc.tokens.verify(credentials.credentials.strip(), svc.clock())
    if who is None:
        raise Unauthenticated("the token is unknown, revoked or expired")
    return who


Caller = Annotated[Principal, Depends(principal)]


def in_shop(who: Principal, shop_id: str) -> None:
    """The token may act on ``shop_id`` (the platform admin may act on every shop)."""
    if not who.is_admin and who.shop_id != shop_id:
        raise PermissionDenied("this token belongs to another shop")


def owned(who: Principal, shop_id: str, what: str) -> None:
    """Like ``in_shop`` but for objects found by id: another shop's object is "not found"."""
    if not who.is_admin and who.shop_id != shop_id:
        raise NotFound(f"{what} not found")


def main_only(who: Principal, shop_id: str, action: str) -> None:
    in_shop(who, shop_id)
    if not who.is_admin and who.role is not AccountRole.MAIN:
        raise PermissionDenied(f"only the shop's main account may {action}")
