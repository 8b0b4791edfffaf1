"""Sign-in, sign-out and the shop's call log: list (filters, paging) and one call's page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from api.console.session import COOKIE
from api.console.web import (
    PREFIX,
    ConsoleRoute,
    render,
    safe_next,
    services_of,
    signed_in,
    state_of,
)
from routing.api_ports import PrincipalKind
from routing.call_log_views import CallLogEntry, CallLogQuery, Outcome
from routing.errors import CallLogQueryError, Unauthenticated
from routing.model import Direction
from routing.q850 import cause_text
from routing.reasons import Reason
from routing.usecases.access import Scope

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends
Text = Annotated[str, Query(max_length=64)]


@router.get("/")
async def home(request: Request) -> Response:
    who = await signed_in(request)
    if who.shop_id is not None:
        return RedirectResponse(f"{PREFIX}/shops/{who.shop_id}/calls", status_code=303)
    return RedirectResponse(f"{PREFIX}/shops", status_code=303)


@router.get("/sign-in")
async def sign_in_page(request: Request, next: Annotated[str, Query(max_length=512)] = ""
                       ) -> Response:
    return render(request, "sign_in.html", None, next=safe_next(next), error="")


@router.post("/sign-in")
async def sign_in(request: Request, token: Annotated[str, Form(max_length=512)],
                  next: Annotated[str, Form(max_length=512)] = "") -> Response:
    svc, state = services_of(request), state_of(request)
    now = svc.clock()
    try:
        await svc.use_cases.credentials.authenticate(token.strip() or None, now)
    except Unauthenticated as exc:
        return render(request, "sign_in.html", None, status=401, next=safe_next(next),
                      error=str(exc))
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(COOKIE, state.codec.issue(token.strip(), now),
                        max_age=state.codec.seconds, path=PREFIX, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response


@router.get("/shops")
async def shops(request: Request) -> Response:
    who = await signed_in(request)
    cases = services_of(request).use_cases
    if who.kind is PrincipalKind.AUDITOR:  # the shops it is granted, whose calls it reads
        found = [await cases.shops.get(who, s, Scope.CALLS_READ) for s in sorted(who.shops)]
    else:
        found = await cases.shops.all(who)
    return render(request, "shops.html", who, shops=found)


def _local(value: str, zone: ZoneInfo, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, LOCAL_FORMAT).replace(tzinfo=zone)
    except ValueError:
        raise CallLogQueryError(f"{field}: not a date and time ({value!r})") from None


def _choice(value: str, allowed: list[str], field: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise CallLogQueryError(f"{field}: unknown value {value!r}")
    return value


@router.get("/shops/{shop_id}/calls")
async def calls(request: Request, shop_id: str, since: Text = "", until: Text = "",
                outcome: Text = "", reason: Text = "", order: Text = "", caller: Text = "",
                direction: Text = "", cursor: Annotated[str, Query(max_length=200)] = ""
                ) -> Response:
    who = await signed_in(request)
    svc = services_of(request)
    cases, now = svc.use_cases, svc.clock()
    shop = await cases.shops.get(who, shop_id, Scope.CALLS_READ)  # the call log's rule
    zone = ZoneInfo(cases.shops.timezone_of(shop))
    filters = {"since": since, "until": until, "outcome": outcome, "reason": reason,
               "order": order, "caller": caller, "direction": direction}
    query = CallLogQuery(
        shop_id=shop_id, since=_local(since, zone, "from"), until=_local(until, zone, "to"),
        order_id=order.strip() or None, caller=caller.strip() or None,
        outcome=_choice(outcome, [o.value for o in Outcome], "outcome"),
        reason=_choice(reason, [r.value for r in Reason], "reason"),
        direction=_choice(direction, [d.value for d in Direction], "direction"),
        limit=state_of(request).options.page_size, cursor=cursor or None)
    page = await cases.call_log.page(who, query, now)
    if not since:
        filters["since"] = f"{page.window.since.astimezone(zone):{LOCAL_FORMAT}}"
    if not until:
        filters["until"] = f"{page.window.until.astimezone(zone):{LOCAL_FORMAT}}"
    oldest = now - timedelta(days=30)
    return render(request, "calls.html", who, shop=shop, zone=str(zone), filters=filters,
                  rows=[_row(e, zone) for e in page.entries], next_cursor=page.next_cursor,
                  outcomes=[o.value for o in Outcome], reasons=list(Reason),
                  directions=[d.value for d in Direction],
                  oldest=f"{oldest.astimezone(zone):{LOCAL_FORMAT}}",
                  newest=f"{now.astimezone(zone):{LOCAL_FORMAT}}")


def _when(value: datetime | None, zone: ZoneInfo) -> str:
    return f"{value.astimezone(zone):%Y-%m-%d %H:%M:%S}" if value else ""


def _row(entry: CallLogEntry, zone: ZoneInfo) -> dict[str, Any]:
    r = entry.record
    return {"id": entry.id, "start": _when(r.start_utc, zone), "direction": r.direction or "",
            "order_id": r.order_id, "caller_a": r.caller_a, "caller_masked": r.caller_masked,
            "buyer_masked": r.buyer_masked, "virtual_x": r.virtual_x,
            "extension": r.extension or "", "mark": r.mark or "",
            "outcome": r.outcome.value.replace("_", " "), "reason": entry.reason_text,
            "billsec": r.billsec, "order_link": entry.order_link, "chat_link": entry.chat_link}


@router.get("/shops/{shop_id}/calls/{call_id}")
async def call(request: Request, shop_id: str, call_id: int) -> Response:
    who = await signed_in(request)
    svc = services_of(request)
    cases, now = svc.use_cases, svc.clock()
    shop = await cases.shops.get(who, shop_id, Scope.CALLS_READ)  # the call log's rule
    zone = ZoneInfo(cases.shops.timezone_of(shop))
    entry = await cases.console.call(who, shop_id, call_id, now)
    return render(request, "call.html", who, shop=shop, zone=str(zone),
                  row=_row(entry, zone), timeline=timeline(entry, zone),
                  record=entry.record)


def timeline(entry: CallLogEntry, zone: ZoneInfo) -> list[tuple[str, str, str]]:
    """(what, when, detail) from the record's times: Asterisk's CDR has the start, the
    answer and the end; a bridged call rings from its start until it is answered or ends."""
    r = entry.record
    cause = cause_text(r.hangup_cause)
    steps = [("Started", _when(r.start_utc, zone),
              f"{r.direction or 'unknown'} call to {r.virtual_x}")]
    if r.outcome in (Outcome.REJECTED, Outcome.FAILED):
        steps.append(("Rejected", _when(r.end_utc, zone),
                      f"{entry.reason_text}" + (f"; Q.850 cause {cause}" if cause else "")))
        return steps
    if r.outcome is not Outcome.UNKNOWN:
        rang = (r.answer_utc or r.end_utc) - r.start_utc
        steps.append(("Ringing", _when(r.start_utc, zone),
                      f"rang {int(rang.total_seconds())} s"))
    if r.answer_utc is not None:
        steps.append(("Answered", _when(r.answer_utc, zone), f"talked {r.billsec} s"))
    ended = f"{r.disposition.lower()}" + (f"; Q.850 cause {cause}" if cause else "")
    if r.outcome is Outcome.UNKNOWN:
        ended = entry.reason_text
    steps.append(("Ended", _when(r.end_utc, zone), ended))
    return steps


