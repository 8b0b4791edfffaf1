"""A shop's accounts over the API: the main account and its sub-accounts (add, change phone,
remove) with the platform's phone review."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from api.auth import Caller, Cases, Services
from api.platform_schemas import (
    ID_PATTERN,
    AccountList,
    AccountOut,
    AddAccountRequest,
    ChangePhoneRequest,
    ReviewRequest,
)
from api.problems import responses

router = APIRouter(prefix="/v1/shops/{shop_id}/accounts", tags=["accounts"])
ShopId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN,
                             description="The shop id.", examples=["shop-1"])]
AccountId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN,
                                description="The account id.", examples=["clerk-1"])]


@router.get("", response_model=AccountList, responses=responses(403, 404, 503),
            summary="The shop's accounts (main first) with their phone review status")
async def list_accounts(shop_id: ShopId, cases: Cases, who: Caller) -> AccountList:
    found = await cases.shops.accounts(who, shop_id)
    return AccountList(accounts=[AccountOut.of(a) for a in found])


@router.post("", response_model=AccountOut, status_code=201,
             responses=responses(403, 404, 409, 503),
             summary="Add a sub-account (the main account, or the platform on its behalf)")
async def add_account(shop_id: ShopId, body: AddAccountRequest, svc: Services, cases: Cases,
                      who: Caller) -> JSONResponse:
    added = await cases.shops.add_sub_account(
        who, shop_id, body.account_id, now=svc.clock(), phone=body.phone, name=body.name,
        phone_reviewed=body.phone_reviewed)
    return JSONResponse(AccountOut.of(added).model_dump(mode="json"), status_code=201)


@router.get("/{account_id}", response_model=AccountOut, responses=responses(403, 404, 503),
            summary="One account of the shop")
async def get_account(shop_id: ShopId, account_id: AccountId, cases: Cases, who: Caller
                      ) -> AccountOut:
    return AccountOut.of(await cases.shops.account(who, shop_id, account_id))


@router.patch("/{account_id}", response_model=AccountOut,
              responses=responses(403, 404, 409, 503),
              summary="Change a sub-account's phone (it awaits review again)")
async def change_phone(shop_id: ShopId, account_id: AccountId, body: ChangePhoneRequest,
                       svc: Services, cases: Cases, who: Caller) -> AccountOut:
    changed = await cases.shops.change_phone(who, shop_id, account_id, body.phone, svc.clock())
    return AccountOut.of(changed)


@router.delete("/{account_id}", response_model=AccountOut,
               responses=responses(403, 404, 409, 503),
               summary="Remove a sub-account (its caller numbers go, its tokens are revoked)")
async def remove_account(shop_id: ShopId, account_id: AccountId, svc: Services, cases: Cases,
                         who: Caller) -> AccountOut:
    return AccountOut.of(await cases.shops.remove_sub_account(who, shop_id, account_id,
                                                              svc.clock()))


@router.put("/{account_id}/review", response_model=AccountOut,
            responses=responses(403, 404, 503),
            summary="Record the platform's review of the account's phone (platform only)")
async def review(shop_id: ShopId, account_id: AccountId, body: ReviewRequest, svc: Services,
                 cases: Cases, who: Caller) -> AccountOut:
    return AccountOut.of(await cases.shops.review_account(who, shop_id, account_id,
                                                          body.reviewed, svc.clock()))
