"""The auditors' exports: start one for a window, watch it, download the file and its
manifest, see whether the call log's chain verifies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from api.console.exports import FORMATS, ExportJob, JobState
from api.console.web import PREFIX, ConsoleRoute, render, services_of, signed_in, state_of
from routing.api_ports import Principal
from routing.errors import CallLogQueryError, NotFound
from routing.usecases import access

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
UTC_FORMAT = "%Y-%m-%dT%H:%M"
Field = Annotated[str, Form(max_length=64)]


@router.get("/exports")
async def exports(request: Request) -> Response:
    who = await signed_in(request)
    access.audit_call_log(who)
    now = services_of(request).clock()
    jobs = [j for j in state_of(request).jobs.all() if access.audits(who, j.shop_id)]
    return render(request, "exports.html", who, jobs=jobs,
                  since=f"{now - timedelta(days=1):{UTC_FORMAT}}", until=f"{now:{UTC_FORMAT}}",
                  formats=FORMATS, shops=sorted(who.shops), every_shop=who.is_admin)


def _utc(value: str, field: str) -> datetime:
    try:
        return datetime.strptime(value, UTC_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise CallLogQueryError(f"{field}: not a date and time ({value!r})") from None


@router.post("/exports")
async def start_export(request: Request, since: Field, until: Field, fmt: Field = "csv",
                       shop: Field = "") -> Response:
    who = await signed_in(request)
    access.audit_call_log(who)
    svc, state = services_of(request), state_of(request)
    cases = svc.use_cases
    start, end = _utc(since, "from"), _utc(until, "to")
    if start >= end:
        raise CallLogQueryError("from must be before to")
    if fmt not in FORMATS:
        raise CallLogQueryError(f"format must be csv or jsonl, not {fmt!r}")
    shop_id = shop.strip() or None
    job = state.jobs.start(
        rows=lambda: cases.call_log.audit_export(who, start, end, shop_id),
        verify=lambda: cases.console.verify_chain(who, shop_id), since=start, until=end,
        shop_id=shop_id, fmt=fmt, now=svc.clock(), by=who.actor)
    return RedirectResponse(f"{PREFIX}/exports/{job.id}", status_code=303)


async def _job(request: Request, job_id: str) -> tuple[Principal, ExportJob]:
    who = await signed_in(request)
    access.audit_call_log(who)
    job = state_of(request).jobs.get(job_id)
    # Another shop's export is not found, as an object of another shop is in the API.
    if job is None or not access.audits(who, job.shop_id):
        raise NotFound("export not found")
    return who, job


@router.get("/exports/{job_id}")
async def export(request: Request, job_id: str) -> Response:
    who, job = await _job(request, job_id)
    manifest = json.dumps(job.manifest, indent=2) if job.manifest else ""
    return render(request, "export.html", who, job=job, manifest=manifest,
                  running=job.state is JobState.RUNNING)


@router.get("/exports/{job_id}/file")
async def export_file(request: Request, job_id: str) -> Response:
    _, job = await _job(request, job_id)
    if job.state is not JobState.DONE:
        raise NotFound("the export is not finished")
    media = "text/csv" if job.fmt == "csv" else "application/x-ndjson"
    return FileResponse(job.path, media_type=media, filename=job.path.name)


@router.get("/exports/{job_id}/manifest")
async def export_manifest(request: Request, job_id: str) -> Response:
    _, job = await _job(request, job_id)
    if job.state is not JobState.DONE:
        raise NotFound("the export is not finished")
    return FileResponse(job.manifest_path, media_type="application/json",
                        filename=job.manifest_path.name)
