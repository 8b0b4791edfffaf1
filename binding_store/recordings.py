"""Recorded calls at rest: claimed by their call record, encrypted as the call ends, swept,
purged after retention, read back (decrypted, streamed) for an auditor.

Asterisk's MixMonitor writes ``<spool_dir>/<recording id>.wav`` in plaintext while the call
lasts. Its call record (AMI ``Cdr`` or the safety-net CSV) names the recording
(``pn_recording``): :meth:`RecordingVault.claim` writes a ``pending`` row with the call's
facts, then :meth:`RecordingVault.finish` encrypts the file into ``<store_dir>/<id>.pnrec``
(or deletes it: a call under the minimum keeps nothing) and deletes the plaintext. What a crash
leaves behind (a pending row with its plaintext, a stored row whose plaintext was not yet
unlinked, a file no record claimed) is found by :meth:`RecordingVault.sweep`, at start-up and
periodically. A file that cannot be encrypted is deleted and counted, never kept in plaintext.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, tuple_

from binding_store.crypto import BuyerCipher
from binding_store.db import Database, guard
from binding_store.outbox import Outbox
from binding_store.recording_crypto import decrypt_file, encrypt_file
from binding_store.recording_models import RecordingRow
from routing.call_rules import CallRulesSource
from routing.cdr import CdrEvent, billable
from routing.errors import NotFound
from routing.events import EventType
from routing.recording import (
    MIN_KEEP_SECONDS,
    Fate,
    RecordingState,
    RecordingView,
    fate_at_end,
    is_recording_id,
    recording_event,
    sweep_fate,
)

log = logging.getLogger("privnum.recordings")

PLAIN_SUFFIX = ".wav"
SEALED_SUFFIX = ".pnrec"
_PURGE_BATCH = 500


@dataclass
class RecordingStats:
    stored: int = 0
    discarded: int = 0
    failed: int = 0  # encryption failures: the plaintext was deleted
    purged: int = 0
    swept: int = 0


@dataclass(frozen=True)
class VaultOptions:
    spool_dir: Path
    store_dir: Path
    min_seconds: int = MIN_KEEP_SECONDS
    settle_seconds: float = 1.0
    orphan_seconds: float = 3_600.0


def view_of(row: RecordingRow) -> RecordingView:
    return RecordingView(
        recording_id=row.id, shop_id=row.shop_id, binding_id=row.binding_id,
        linkedid=row.linkedid, uniqueid=row.uniqueid, state=RecordingState(row.state),
        billsec=row.billsec, started_at=row.started_at, stored_at=row.stored_at,
        size=row.size)


class RecordingVault:
    """Implements ``routing.recording.RecordingReader``; the call log's writer hands it the
    call records it stored (:meth:`claim`)."""

    def __init__(self, database: Database, cipher: BuyerCipher | Callable[[], BuyerCipher],
                 rules: CallRulesSource,
                 options: VaultOptions, *, outbox: Outbox | None = None,
                 observe: Callable[[str], None] | None = None) -> None:
        self._db = database
        # a provider: reading the call log (which asks for recording ids) needs no key file
        self._cipher_of = cipher if callable(cipher) else (lambda: cipher)
        self._rules = rules
        self.options = options
        self._outbox = outbox
        self._observe = observe
        self.stats = RecordingStats()
        self._busy: set[str] = set()  # being encrypted now: a sweep leaves them alone

    # ---- the call ends ---------------------------------------------------------------------

    async def claim(self, events: Sequence[CdrEvent], now: datetime) -> list[str]:
        """A ``pending`` row for each recording these call records name (once: a record seen
        again, from the CSV after AMI, changes nothing); returns the ids newly claimed."""
        named = {e.pn_recording: e for e in billable(events)  # forks merged: the whole call
                 if e.pn_recording and is_recording_id(e.pn_recording) and e.pn_shop}
        if not named:
            return []
        rules = await self._rules.rules_for(frozenset(e.pn_shop for e in named.values()))
        claimed: list[str] = []
        async with guard(self._db.timeout * 5), self._db.session() as session:
            known = set((await session.scalars(select(RecordingRow.id).where(
                RecordingRow.id.in_(named)))).all())
            for rid, event in named.items():
                if rid in known:
                    continue
                shop_rules = rules.get(event.pn_shop)
                session.add(RecordingRow(
                    id=rid, shop_id=event.pn_shop, binding_id=event.pn_binding,
                    system_name=event.system_name, uniqueid=event.uniqueid,
                    linkedid=event.linkedid, started_at=event.start, billsec=event.billsec,
                    state=RecordingState.PENDING.value, key_id="", size=0,
                    retention_days=shop_rules.record_retention_days if shop_rules else 90,
                    created_at=now))
                claimed.append(rid)
            await session.commit()
        return claimed

    async def finish(self, recording_id: str, now: datetime) -> RecordingState | None:
        """Encrypt (or discard) a claimed recording whose file Asterisk has closed; ``None``
        if it is not pending (already finished, or unknown)."""
        async with guard(self._db.timeout * 5), self._db.session() as session:
            row = await session.get(RecordingRow, recording_id)
            if row is None or row.state != RecordingState.PENDING.value:
                return None
            fate = fate_at_end(row.billsec, self.options.min_seconds)
        return await self._apply(recording_id, fate, now)

    async def wait_settled(self, recording_id: str, limit: float = 30.0) -> None:
        """Until Asterisk has not written the file for ``settle_seconds`` (MixMonitor closes
        it just after the call), or ``limit`` seconds; a missing file is settled."""
        path = self._plain(recording_id)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            idle = _idle_seconds(path)
            if idle is None or idle >= self.options.settle_seconds:
                return
            await asyncio.sleep(max(0.05, self.options.settle_seconds - idle))

    async def _apply(self, recording_id: str, fate: Fate, now: datetime
                     ) -> RecordingState | None:
        if fate is Fate.WAIT or recording_id in self._busy:
            return None
        self._busy.add(recording_id)
        try:
            return await self._apply_now(recording_id, fate, now)
        finally:
            self._busy.discard(recording_id)

    async def _apply_now(self, recording_id: str, fate: Fate, now: datetime
                         ) -> RecordingState:
        plain = self._plain(recording_id)
        if fate is Fate.DELETE:
            plain.unlink(missing_ok=True)
            return await self._mark(recording_id, RecordingState.DISCARDED, now)
        try:
            key_id, size = await asyncio.to_thread(
                self._encrypt, recording_id, plain, self._sealed(recording_id))
        except FileNotFoundError:
            log.warning("recording %s: no file to encrypt (nothing was recorded)", recording_id)
            return await self._mark(recording_id, RecordingState.DISCARDED, now)
        except Exception as exc:  # never keep plaintext that could not be encrypted
            for path in (plain, self._sealed(recording_id)):
                with contextlib.suppress(OSError):  # a file left here: the sweep deletes it
                    path.unlink(missing_ok=True)
            self.stats.failed += 1
            if self._observe is not None:
                self._observe("failed")
            log.error("recording %s could not be encrypted, deleted (%s)", recording_id,
                      type(exc).__name__)
            return await self._mark(recording_id, RecordingState.FAILED, now)
        state = await self._mark(recording_id, RecordingState.STORED, now, key_id=key_id,
                                 size=size)
        plain.unlink(missing_ok=True)  # after the row says stored: a crash here is swept
        return state

    def _encrypt(self, recording_id: str, plain: Path, sealed: Path) -> tuple[str, int]:
        self.options.store_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return encrypt_file(self._cipher_of(), recording_id, plain, sealed)

    async def _mark(self, recording_id: str, state: RecordingState, now: datetime, *,
                    key_id: str = "", size: int = 0) -> RecordingState:
        async with guard(self._db.timeout * 5), self._db.session() as session:
            row = await session.get(RecordingRow, recording_id)
            if row is None:
                return state
            if row.state != RecordingState.PENDING.value:  # finished meanwhile (a sweep)
                return RecordingState(row.state)
            row.state = state.value
            if state is RecordingState.STORED:
                row.key_id, row.size, row.stored_at = key_id, size, now
                row.purge_after = now + timedelta(days=row.retention_days)
                if self._outbox is not None:
                    await self._outbox.write(session, [recording_event(
                        view_of(row), EventType.RECORDING_STORED, now)], now)
            await session.commit()
        counted = {RecordingState.STORED: "stored", RecordingState.DISCARDED: "discarded"}
        if state in counted:
            setattr(self.stats, counted[state], getattr(self.stats, counted[state]) + 1)
            if self._observe is not None:
                self._observe(counted[state])
        return state

    # ---- what a crash leaves ---------------------------------------------------------------

    async def sweep(self, now: datetime) -> int:
        """Encrypt or delete the plaintext files no call is writing any more (see
        ``routing.recording.sweep_fate``); returns how many it handled."""
        spool, store = self.options.spool_dir, self.options.store_dir
        if store.is_dir():
            for part in store.glob("*" + SEALED_SUFFIX + ".part"):
                part.unlink(missing_ok=True)  # an encryption cut short
        if not spool.is_dir():
            return 0
        files = {p.name[:-len(PLAIN_SUFFIX)]: p for p in spool.glob("*" + PLAIN_SUFFIX)}
        if not files:
            return 0
        async with guard(self._db.timeout * 5), self._db.session() as session:
            rows = {r.id: r for r in (await session.scalars(select(RecordingRow).where(
                RecordingRow.id.in_([i for i in files if is_recording_id(i)])))).all()}
        handled = 0
        for rid, path in files.items():
            idle = _idle_seconds(path)
            if idle is None or rid in self._busy:
                continue
            row = rows.get(rid)
            fate = sweep_fate(RecordingState(row.state) if row else None,
                              row.billsec if row else None, idle,
                              settle_seconds=self.options.settle_seconds,
                              orphan_seconds=self.options.orphan_seconds,
                              min_seconds=self.options.min_seconds)
            if fate is Fate.WAIT:
                continue
            handled += 1
            if row is not None and row.state == RecordingState.PENDING.value:
                await self._apply(rid, fate, now)
            else:
                path.unlink(missing_ok=True)
                if row is None:
                    log.warning("recording file %s was claimed by no call record: deleted",
                                path.name)
        self.stats.swept += handled
        return handled

    # ---- retention -------------------------------------------------------------------------

    async def purge(self, now: datetime) -> int:
        """Delete the recordings past their retention (file first, then the row says so,
        with its ``recording.purged`` event); returns how many."""
        async with guard(self._db.timeout * 5), self._db.session() as session:
            rows = list((await session.scalars(
                select(RecordingRow).where(RecordingRow.state == RecordingState.STORED.value,
                                           RecordingRow.purge_after <= now)
                .limit(_PURGE_BATCH))).all())
            for row in rows:
                self._sealed(row.id).unlink(missing_ok=True)
                row.state, row.purged_at = RecordingState.PURGED.value, now
                if self._outbox is not None:
                    await self._outbox.write(session, [recording_event(
                        view_of(row), EventType.RECORDING_PURGED, now)], now)
            await session.commit()
        self.stats.purged += len(rows)
        if self._observe is not None:
            for _ in rows:
                self._observe("purged")
        return len(rows)

    # ---- reading (RecordingReader) ---------------------------------------------------------

    async def find(self, recording_id: str) -> RecordingView:
        if not is_recording_id(recording_id):
            raise NotFound("recording not found")
        async with guard(self._db.timeout * 5), self._db.session() as session:
            row = await session.get(RecordingRow, recording_id)
            if row is None:
                raise NotFound("recording not found")
            return view_of(row)

    async def by_calls(self, keys: frozenset[tuple[str, str]]) -> dict[tuple[str, str], str]:
        if not keys:
            return {}
        query = select(RecordingRow.system_name, RecordingRow.uniqueid, RecordingRow.id).where(
            tuple_(RecordingRow.system_name, RecordingRow.uniqueid).in_(list(keys)),
            RecordingRow.state == RecordingState.STORED.value)
        async with guard(self._db.timeout * 5), self._db.session() as session:
            return {(s, u): rid for s, u, rid in (await session.execute(query)).all()}

    def audio(self, recording_id: str) -> Iterator[bytes]:
        """The decrypted audio of a stored recording, chunk by chunk (blocking: run it in a
        thread)."""
        return decrypt_file(self._cipher_of(), recording_id, self._sealed(recording_id))

    def sealed_path(self, recording_id: str) -> Path:
        return self._sealed(recording_id)

    def _plain(self, recording_id: str) -> Path:
        return self.options.spool_dir / (recording_id + PLAIN_SUFFIX)

    def _sealed(self, recording_id: str) -> Path:
        return self.options.store_dir / (recording_id + SEALED_SUFFIX)


def _idle_seconds(path: Path) -> float | None:
    """Seconds since ``path`` was last written (the file's own clock, this host's), or
    ``None`` if it is gone."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None
