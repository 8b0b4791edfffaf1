"""Recorded calls for auditors: the audio of one recording, decrypted, to a credential holding
``recordings:read`` on its shop (auditors only), every retrieval audited before a byte is
sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from routing.api_ports import AuditPort, Principal
from routing.audit import AuditKind
from routing.errors import NotFound, PermissionDenied
from routing.recording import RecordingReader, RecordingState, RecordingView
from routing.usecases.access import Scope, covers, read_recording, scopes_of


class Recordings:
    def __init__(self, *, reader: RecordingReader, audit: AuditPort) -> None:
        self._reader = reader
        self._audit = audit

    async def retrieve(self, who: Principal, recording_id: str, now: datetime
                       ) -> tuple[RecordingView, Iterator[bytes]]:
        """The recording and its audio (blocking chunks: a front door reads them off its event
        loop). Without the scope: 403 whatever the id; a recording of a shop the auditor is
        not granted, or one no longer kept: 404."""
        if Scope.RECORDINGS_READ not in scopes_of(who):
            raise PermissionDenied(f"missing scope '{Scope.RECORDINGS_READ}': only an "
                                   "auditor's credential may retrieve recorded calls")
        view = await self._reader.find(recording_id)
        if not covers(who, view.shop_id) or view.state is not RecordingState.STORED:
            raise NotFound("recording not found")
        read_recording(who, view.shop_id)
        await self._audit.append(now=now, actor=who.actor, kind=AuditKind.RECORDING_RETRIEVED,
                                 shop_id=view.shop_id, subject=view.recording_id,
                                 detail={"binding_id": view.binding_id, "bytes": view.size})
        return view, self._reader.audio(view.recording_id)
