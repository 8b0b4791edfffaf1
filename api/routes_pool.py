"""Quarantine of virtual numbers (the platform's credential only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from api.auth import Caller, Cases, Services
from api.problems import responses
from api.schemas import StrictBody, examples
from routing.quarantine import MAX_REASON, QuarantineView

router = APIRouter(tags=["numbers"])
Number = Annotated[str, Path(min_length=1, max_length=32, description="The virtual number X.",
                              examples=["+8617000000001"])]


class QuarantineRequest(StrictBody):
    model_config = examples({"reason": "complaints from called parties"})

    reason: str = Field(min_length=1, max_length=MAX_REASON,
                        description="Why (audited, sent with the event).")


class QuarantineOut(BaseModel):
    model_config = examples({"number": "+8617000000001", "state": "quarantined",
                             "changed": True, "reason": "complaints from called parties",
                             "active_bindings": 2})

    number: str
    state: str
    changed: bool = Field(description="false: it already was in that state")
    reason: str | None = None
    active_bindings: int = Field(description="X's active bindings: they keep working until "
                                             "they end")

    @classmethod
    def of(cls, view: QuarantineView) -> QuarantineOut:
        return cls(number=view.number, state=view.state.value, changed=view.changed,
                   reason=view.reason or None, active_bindings=view.active_bindings)


@router.post("/v1/pool/{number}/quarantine", response_model=QuarantineOut,
             responses=responses(400, 403, 404, 503),
             summary="Quarantine X: out of allocation at once, its bindings run to their end")
async def quarantine(number: Number, body: QuarantineRequest, svc: Services, cases: Cases,
                     who: Caller) -> QuarantineOut:
    return QuarantineOut.of(await cases.quarantine.quarantine(who, number, body.reason,
                                                              svc.clock()))


@router.post("/v1/pool/{number}/release-quarantine", response_model=QuarantineOut,
             responses=responses(400, 403, 404, 409, 503),
             summary="Bring a quarantined X back into allocation")
async def release_quarantine(number: Number, svc: Services, cases: Cases, who: Caller
                             ) -> QuarantineOut:
    return QuarantineOut.of(await cases.quarantine.release(who, number, svc.clock()))
