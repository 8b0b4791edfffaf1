"""Recording with notice: which calls are recorded, what becomes of a recording when its call
ends, what a sweep does with plaintext it finds, and when a stored recording is purged.

Pure: the rules and the facts (call length, file age, what the store knows) are passed in; the
answers are values. The carrier blocks a recorded call whose parties were not told, so the
dialplan plays the notice to both before they are connected and never bridges a recorded call
whose notice could not play; privnum only decides that a call is recorded and names its file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from routing.events import Event, EventType, call_stream

MIN_KEEP_SECONDS = 3
"""A call shorter than this (billed seconds) keeps no recording: nothing was said worth the
risk of keeping it."""

RECORDING_ID_PREFIX = "rec_"
_RECORDING_ID = re.compile(r"^rec_[0-9a-f]{24}$")
RECORDING_ID_PATTERN = "^rec_[0-9a-f]{24}$"
"""The shape of a recording id (the dialplan checks it before naming a file after it)."""


def is_recording_id(text: str) -> bool:
    return _RECORDING_ID.match(text) is not None


def recording_id(token_hex: str) -> str:
    """The recording id made of 24 random hex digits (the caller draws them)."""
    value = RECORDING_ID_PREFIX + token_hex.lower()
    if not is_recording_id(value):
        raise ValueError("a recording id needs 24 hex digits")
    return value


class RecordingState(StrEnum):
    PENDING = "pending"  # the call ended, its file is not yet encrypted
    STORED = "stored"  # encrypted at rest, the plaintext deleted
    DISCARDED = "discarded"  # the call was too short (or unanswered): the file was deleted
    FAILED = "failed"  # the file could not be encrypted: it was deleted
    PURGED = "purged"  # the encrypted file was deleted after its retention


class Fate(StrEnum):
    """What becomes of a recording's plaintext file."""

    ENCRYPT = "encrypt"
    DELETE = "delete"
    WAIT = "wait"  # the file may still be written to (a call in progress): look again later


def fate_at_end(billsec: int, min_seconds: int = MIN_KEEP_SECONDS) -> Fate:
    """When the call's record arrives: keep (encrypt) a call of ``min_seconds`` or more."""
    return Fate.ENCRYPT if billsec >= min_seconds else Fate.DELETE


def sweep_fate(state: RecordingState | None, billsec: int | None, idle_seconds: float, *,
               settle_seconds: float, orphan_seconds: float,
               min_seconds: int = MIN_KEEP_SECONDS) -> Fate:
    """What a sweep does with a plaintext file found in the spool directory.

    ``state``/``billsec``: what the store knows of the recording (``None``: no call record
    yet); ``idle_seconds``: since the file was last written. A file written to within
    ``settle_seconds`` may belong to a call in progress. A file whose call ended (the store
    has its record) is encrypted or deleted as at the call's end; one already encrypted,
    discarded or purged is deleted. A file no call record ever claimed within
    ``orphan_seconds`` (the safety-net CSV re-imports records missed while privnum was down)
    cannot be attributed to a shop, so it is deleted: plaintext never waits for ever.
    """
    if idle_seconds < settle_seconds:
        return Fate.WAIT
    if state is RecordingState.PENDING:
        return fate_at_end(billsec or 0, min_seconds)
    if state is not None:
        return Fate.DELETE
    return Fate.DELETE if idle_seconds >= orphan_seconds else Fate.WAIT


def purge_due(stored_at: datetime, retention_days: int, now: datetime) -> bool:
    """Whether a recording stored at ``stored_at`` has outlived its shop's retention."""
    return now >= stored_at + timedelta(days=retention_days)


def purge_before(retention_days: int, now: datetime) -> datetime:
    """Recordings stored before this are due (``purge_due`` for a whole store)."""
    return now - timedelta(days=retention_days)


@dataclass(frozen=True)
class RecordingView:
    """A stored recording as the call log and the API show it (no numbers)."""

    recording_id: str
    shop_id: str
    binding_id: str
    linkedid: str
    uniqueid: str
    state: RecordingState
    billsec: int
    started_at: datetime
    stored_at: datetime | None
    size: int


class RecordingReader(Protocol):
    """The encrypted recordings, read for an auditor (``NotFound`` for an unknown id)."""

    async def find(self, recording_id: str) -> RecordingView: ...

    async def by_calls(self, keys: frozenset[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Stored recording ids by (system name, uniqueid) of their call records."""
        ...

    def audio(self, recording_id: str) -> Iterator[bytes]:
        """The decrypted audio, chunk by chunk, each authenticated before it is yielded
        (blocking file reads)."""
        ...


def recording_event(view: RecordingView, kind: EventType, at: datetime) -> Event:
    """``recording.stored`` / ``recording.purged``: on the call's stream, so a subscriber
    sees it after the call's own events. No numbers, no audio: the id to fetch it by."""
    return Event(kind, call_stream(view.linkedid), view.shop_id, at, {
        "recording_id": view.recording_id, "binding_id": view.binding_id or None,
        "linkedid": view.linkedid, "billsec": view.billsec, "bytes": view.size,
        "started_at": view.started_at.isoformat(),
        "stored_at": view.stored_at.isoformat() if view.stored_at else None,
        "at": at.isoformat()})
