"""The platform's own endpoints (platform credential): tokens (issue, list, read, revoke),
the shops and the pool's utilisation. ``privnum tokens`` does the same at the shell."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.auth import Caller, Cases, Services
from api.platform_schemas import (
    ID_PATTERN,
    IssueTokenRequest,
    NewTokenOut,
    PoolUtilisation,
    TokenList,
    TokenOut,
)
from api.problems import responses
from routing.api_ports import PrincipalKind

router = APIRouter(tags=["platform"])
TokenId = Annotated[str, Path(min_length=1, max_length=24, pattern=r"^[A-Za-z0-9]+$",
                              description="A token id (its public part).",
                              examples=["tk1a2b3c"])]


@router.post("/v1/tokens", response_model=NewTokenOut, status_code=201,
             responses=responses(403, 404, 409, 503),
             summary="Issue a platform, shop-account or auditor token (the secret is shown "
                     "once)")
async def issue_token(body: IssueTokenRequest, svc: Services, cases: Cases, who: Caller
                      ) -> JSONResponse:
    issued = await cases.credentials.issue(
        who, now=svc.clock(), kind=PrincipalKind(body.kind), shop_id=body.shop_id,
        account_id=body.account_id, shops=body.shops, label=body.label, days=body.days)
    return JSONResponse(NewTokenOut.of(issued).model_dump(mode="json"), status_code=201)


@router.get("/v1/tokens", response_model=TokenList, responses=responses(403, 404, 503),
            summary="Tokens (never their secrets)")
async def list_tokens(cases: Cases, who: Caller,
                      shop_id: Annotated[str | None, Query(
                          min_length=1, max_length=64, pattern=ID_PATTERN,
                          description="Only this shop's (and auditors granted it).")] = None
                      ) -> TokenList:
    return TokenList(tokens=[TokenOut.of(t) for t in await cases.credentials.list(who, shop_id)])


@router.get("/v1/tokens/{token_id}", response_model=TokenOut,
            responses=responses(403, 404, 503), summary="One token")
async def get_token(token_id: TokenId, cases: Cases, who: Caller) -> TokenOut:
    return TokenOut.of(await cases.credentials.get(who, token_id))


@router.delete("/v1/tokens/{token_id}", response_model=TokenOut,
               responses=responses(403, 404, 503),
               summary="Revoke a token at once (idempotent)")
async def revoke_token(token_id: TokenId, svc: Services, cases: Cases, who: Caller
                       ) -> TokenOut:
    return TokenOut.of(await cases.credentials.revoke(who, token_id, svc.clock()))


@router.get("/v1/pool/utilisation", response_model=PoolUtilisation,
            responses=responses(403, 503),
            summary="How much of the privacy-number pool is in use (platform credential)")
async def pool_utilisation(svc: Services, cases: Cases, who: Caller) -> PoolUtilisation:
    in_use, total = await cases.pool.utilisation(who, svc.clock())
    return PoolUtilisation(in_use=in_use, in_service=total,
                           ratio=round(in_use / total, 6) if total else 0.0)
