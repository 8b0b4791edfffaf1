"""Bearer-token authentication: the presented credential becomes the acting ``Principal``.
What each principal may do is decided by the use cases (``routing.usecases.access``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.services import ApiServices
from routing.api_ports import Principal
from routing.usecases import UseCases

bearer = HTTPBearer(auto_error=False,
                    description="A platform, shop-account or auditor token.")
ACCOUNT_HEADER = "X-Privnum-Account"


# ``async def`` although they await nothing: FastAPI runs a plain ``def`` dependency in its
# thread pool, a thread hop per request for a dictionary look-up.
async def services(request: Request) -> ApiServices:
    return services_of(request)


async def use_cases(request: Request) -> UseCases:
    return services_of(request).use_cases


def services_of(request: Request) -> ApiServices:
    """The app's services, for a hot route that takes the request rather than resolving
    ``Services`` (each dependency FastAPI resolves costs as much as a dictionary of them)."""
    svc = request.app.state.services
    assert isinstance(svc, ApiServices)
    return svc


Services = Annotated[ApiServices, Depends(services)]
Cases = Annotated[UseCases, Depends(use_cases)]


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    on_behalf_of: Annotated[str | None, Header(
        alias=ACCOUNT_HEADER, min_length=1, max_length=64,
        description="Platform credential only: act on behalf of this shop account (with "
                    "its rights; the audit log names both).")] = None,
) -> Principal:
    token = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        token = credentials.credentials
    svc = services_of(request)
    return await svc.use_cases.credentials.authenticate(token, svc.clock(), on_behalf_of)


Caller = Annotated[Principal, Depends(principal)]
