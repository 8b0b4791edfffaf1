"""Recorded calls at rest (SQLite and PostgreSQL, real files): claimed by their call record,
encrypted in chunks with the buyer numbers' key ring and the plaintext deleted, a short call
keeps nothing, an encryption failure deletes the file and is counted, a sweep finishes what a
crash left, retention purges; read back decrypted."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from binding_store.call_rules import SqlCallRules
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.outbox import Outbox
from binding_store.recording_crypto import CHUNK, decrypt_file, encrypt_file
from binding_store.recordings import RecordingVault, VaultOptions
from binding_store.webhook_models import WebhookEvent
from routing.call_rules import CallRules, ShopCallRules
from routing.cdr import CdrEvent
from routing.errors import ConfigurationError, NotFound
from routing.recording import RecordingState
from tests.binding_store.shop_helpers import NOW, enabled_shop

RID, RID2 = "rec_" + "a" * 24, "rec_" + "b" * 24
AUDIO = os.urandom(3 * CHUNK + 123)  # more than one chunk, not a whole number of them


def cdr(recording: str, billsec: int, uniqueid: str = "pbx-1.1") -> CdrEvent:
    return CdrEvent(system_name="pbx", uniqueid=uniqueid, linkedid=uniqueid, sequence=1,
                    start=NOW, answer=NOW, end=NOW + timedelta(seconds=billsec),
                    duration=billsec + 2, billsec=billsec, disposition="ANSWERED",
                    lastapp="Dial", hangup_cause=16, pn_binding="bnd1", pn_shop="s1",
                    pn_reason="bridged", pn_recording=recording)


@pytest.fixture
async def vault(database: Database, cipher: BuyerCipher, tmp_path: Path) -> RecordingVault:
    await enabled_shop(database, "s1", subs=False)
    rules = SqlCallRules(database, CallRules(record=True), cache_seconds=0)
    await rules.set("s1", ShopCallRules(record=True, record_retention_days=7), actor="op",
                    now=NOW)
    spool = tmp_path / "spool"
    spool.mkdir()
    seen: list[str] = []
    v = RecordingVault(database, cipher, rules,
                       VaultOptions(spool_dir=spool, store_dir=tmp_path / "store",
                                    settle_seconds=0, orphan_seconds=3_600),
                       outbox=Outbox(), observe=seen.append)
    v.seen = seen  # type: ignore[attr-defined]
    return v


def spooled(vault: RecordingVault, rid: str, data: bytes = AUDIO) -> Path:
    path = vault.options.spool_dir / f"{rid}.wav"
    path.write_bytes(data)
    return path


def test_chunked_encryption_round_trips_and_detects_tampering(cipher: BuyerCipher,
                                                             tmp_path: Path) -> None:
    plain, sealed = tmp_path / "a.wav", tmp_path / "a.pnrec"
    plain.write_bytes(AUDIO)
    key_id, size = encrypt_file(cipher, RID, plain, sealed)
    assert (key_id, size) == (cipher.current_key_id, len(AUDIO))
    assert AUDIO[:64] not in sealed.read_bytes()
    assert b"".join(decrypt_file(cipher, RID, sealed)) == AUDIO
    with pytest.raises(ConfigurationError):  # sealed for another recording
        b"".join(decrypt_file(cipher, RID2, sealed))
    body = sealed.read_bytes()
    cut = tmp_path / "cut.pnrec"
    cut.write_bytes(body[:len(body) - (len(body) - 7) // 4])  # whole chunks cut off the end
    with pytest.raises(ConfigurationError):
        b"".join(decrypt_file(cipher, RID, cut))
    other = BuyerCipher(KeyRing.generate())
    with pytest.raises(ConfigurationError):
        b"".join(decrypt_file(other, RID, sealed))


def test_an_empty_recording_round_trips(cipher: BuyerCipher, tmp_path: Path) -> None:
    (tmp_path / "e.wav").write_bytes(b"")
    encrypt_file(cipher, RID, tmp_path / "e.wav", tmp_path / "e.pnrec")
    assert b"".join(decrypt_file(cipher, RID, tmp_path / "e.pnrec")) == b""


async def test_a_call_record_claims_and_the_end_encrypts(vault: RecordingVault,
                                                        database: Database) -> None:
    plain = spooled(vault, RID)
    assert await vault.claim([cdr(RID, 30)], NOW) == [RID]
    assert await vault.claim([cdr(RID, 30)], NOW) == []  # the same record again (CSV)
    assert (await vault.find(RID)).state is RecordingState.PENDING
    assert await vault.finish(RID, NOW) is RecordingState.STORED
    assert not plain.exists()
    view = await vault.find(RID)
    assert (view.state, view.size, view.shop_id, view.billsec) == (
        RecordingState.STORED, len(AUDIO), "s1", 30)
    assert b"".join(vault.audio(RID)) == AUDIO
    assert AUDIO[:64] not in vault.sealed_path(RID).read_bytes()
    assert await vault.by_calls(frozenset({("pbx", "pbx-1.1"), ("pbx", "x")})) == {
        ("pbx", "pbx-1.1"): RID}
    assert await vault.finish(RID, NOW) is None  # once
    async with database.session() as s:
        types = (await s.scalars(select(WebhookEvent.type))).all()
    assert list(types) == ["recording.stored"]
    assert vault.seen == ["stored"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("billsec", [0, 2])
async def test_a_call_under_three_seconds_keeps_nothing(vault: RecordingVault,
                                                        billsec: int) -> None:
    plain = spooled(vault, RID)
    await vault.claim([cdr(RID, billsec)], NOW)
    assert await vault.finish(RID, NOW) is RecordingState.DISCARDED
    assert not plain.exists() and not vault.sealed_path(RID).exists()
    assert await vault.by_calls(frozenset({("pbx", "pbx-1.1")})) == {}


async def test_an_encryption_failure_deletes_the_file_and_is_counted(
        vault: RecordingVault, tmp_path: Path) -> None:
    plain = spooled(vault, RID)
    await vault.claim([cdr(RID, 30)], NOW)
    vault.options = replace(vault.options, store_dir=tmp_path / "not-a-dir")
    (tmp_path / "not-a-dir").write_text("a file where the store directory should be")
    assert await vault.finish(RID, NOW) is RecordingState.FAILED
    assert not plain.exists()
    assert vault.stats.failed == 1 and vault.seen == ["failed"]  # type: ignore[attr-defined]


async def test_the_sweep_finishes_what_a_crash_left(vault: RecordingVault) -> None:
    pending = spooled(vault, RID)  # claimed, killed before encryption
    await vault.claim([cdr(RID, 30)], NOW)
    short = spooled(vault, "rec_" + "c" * 24)  # claimed, too short
    await vault.claim([cdr("rec_" + "c" * 24, 1, "pbx-2.1")], NOW)
    done = spooled(vault, RID2)  # encrypted, killed before the plaintext was unlinked
    await vault.claim([cdr(RID2, 30, "pbx-3.1")], NOW)
    await vault.finish(RID2, NOW)
    done.write_bytes(AUDIO)
    orphan = spooled(vault, "rec_" + "d" * 24)  # no call record yet: kept for now
    old = time.time() - 2 * 3_600
    stranger = spooled(vault, "rec_" + "e" * 24)  # nobody claimed it for two hours
    os.utime(stranger, (old, old))
    assert await vault.sweep(NOW) == 4
    assert not any(p.exists() for p in (pending, short, done, stranger))
    assert orphan.exists()
    assert (await vault.find(RID)).state is RecordingState.STORED
    assert b"".join(vault.audio(RID)) == AUDIO
    assert (await vault.find("rec_" + "c" * 24)).state is RecordingState.DISCARDED


async def test_a_file_still_being_written_waits(vault: RecordingVault) -> None:
    vault.options = replace(vault.options, settle_seconds=3_600)
    plain = spooled(vault, RID)
    await vault.claim([cdr(RID, 30)], NOW)
    assert await vault.sweep(NOW) == 0 and plain.exists()


async def test_retention_purges_the_file_with_an_event(vault: RecordingVault,
                                                       database: Database) -> None:
    spooled(vault, RID)
    await vault.claim([cdr(RID, 30)], NOW)
    await vault.finish(RID, NOW)
    assert await vault.purge(NOW + timedelta(days=6)) == 0  # the shop keeps 7 days
    assert await vault.purge(NOW + timedelta(days=7)) == 1
    assert not vault.sealed_path(RID).exists()
    assert (await vault.find(RID)).state is RecordingState.PURGED
    async with database.session() as s:
        types = (await s.scalars(select(WebhookEvent.type).order_by(WebhookEvent.id))).all()
    assert list(types) == ["recording.stored", "recording.purged"]


async def test_unknown_or_malformed_ids_are_not_found(vault: RecordingVault) -> None:
    for rid in (RID, "../../etc/passwd"):
        with pytest.raises(NotFound):
            await vault.find(rid)
