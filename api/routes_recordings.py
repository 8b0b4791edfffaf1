"""Recorded calls' audio, for auditors only (scope ``recordings:read``), every retrieval
audited; decrypted as it streams, never held whole."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response, StreamingResponse

from api.auth import Caller, Cases, Services
from api.problems import responses
from routing.recording import RECORDING_ID_PATTERN

router = APIRouter()

RecordingId = Annotated[str, Path(min_length=28, max_length=28, pattern=RECORDING_ID_PATTERN,
                                  examples=["rec_3f9a0c1d2e4b5a6978801234"])]


def _ahead(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


@router.get("/v1/recordings/{recording_id}/audio", tags=["call records"],
            responses={**responses(403, 404, 503),
                       200: {"description": "The recording (WAV), decrypted as it streams",
                             "content": {"audio/wav": {"schema": {"type": "string",
                                                                  "format": "binary"},
                                                       "example": "RIFF...WAVEfmt ..."}}}},
            response_class=Response,
            summary="A recorded call's audio (auditors with recordings:read; audited)")
async def recording_audio(recording_id: RecordingId, svc: Services, cases: Cases,
                          who: Caller) -> Response:
    view, chunks = await cases.recordings.retrieve(who, recording_id, svc.clock())
    # The first chunk now, off the event loop: a file that does not open (wrong key file,
    # damage) is a problem response, not a cut-off download.
    first = await asyncio.to_thread(next, chunks, b"")
    return StreamingResponse(
        _ahead(first, chunks), media_type="audio/wav",
        headers={"Content-Disposition": f'attachment; filename="{view.recording_id}.wav"',
                 "Cache-Control": "no-store"})
