"""Recorded calls over HTTP: the audio only to an auditor granted the shop (scope
``recordings:read``, which no shop credential and not the platform holds), decrypted as it
streams, every retrieval audited; the call log names the recording."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from binding_store.audit import AuditLog
from binding_store.call_log import CallLogStore
from binding_store.recordings import RecordingVault, VaultOptions
from routing.cdr import CdrEvent
from tests.api.conftest import SHOP, Env, assert_problem
from tests.api.test_scope_matrix import KINDS, credentials

RID = "rec_" + "5a" * 12
AUDIO = b"RIFF" + os.urandom(200_000)
URL = f"/v1/recordings/{RID}/audio"


async def recorded_call(env: Env, tmp_path: Path) -> RecordingVault:
    """A call of the shop, recorded, its record stored and its file encrypted."""
    vault = env.services.use_cases.ports.recordings
    assert isinstance(vault, RecordingVault)
    vault.options = VaultOptions(spool_dir=tmp_path / "spool", store_dir=tmp_path / "store",
                                 settle_seconds=0)
    vault.options.spool_dir.mkdir()
    (vault.options.spool_dir / f"{RID}.wav").write_bytes(AUDIO)
    start = env.clock.now - timedelta(hours=1)
    event = CdrEvent(system_name="pbx", uniqueid="pbx-1.1", linkedid="pbx-1.1", sequence=1,
                     start=start, answer=start, end=start + timedelta(seconds=20),
                     duration=22, billsec=20, disposition="ANSWERED", lastapp="Dial",
                     hangup_cause=16, pn_shop=SHOP, pn_reason="bridged", pn_x="+8617000000001",
                     pn_direction="merchant", pn_recording=RID)
    assert await CallLogStore(env.db).write_batch([event]) == 1
    assert await vault.claim([event], env.clock.now) == [RID]
    await vault.finish(RID, env.clock.now)
    assert not (vault.options.spool_dir / f"{RID}.wav").exists()
    return vault


async def test_only_an_auditor_of_the_shop_gets_the_audio_and_it_is_audited(
        ready: Env, tmp_path: Path) -> None:
    env = ready
    await recorded_call(env, tmp_path)
    headers = await credentials(env)
    for kind in KINDS:
        r = await env.client.get(URL, headers=headers[kind])
        if kind in ("none", "revoked"):
            assert_problem(r, 401, "unauthenticated")
        elif kind == "auditor":
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "audio/wav"
            assert r.content == AUDIO
        elif kind == "auditor_elsewhere":
            assert_problem(r, 404, "not_found")  # another shop's recording does not exist
        else:  # every shop credential, and the platform itself
            assert_problem(r, 403, "permission_denied")
            assert "'recordings:read'" in r.json()["detail"], (kind, r.text)
    events = await AuditLog(env.db).events(shop_id=SHOP, kind="recording.retrieved")
    assert len(events) == 1 and events[0].subject == RID
    assert events[0].actor.startswith("auditor:") or "audit" in events[0].actor


async def test_the_call_log_lists_the_recording(ready: Env, tmp_path: Path) -> None:
    env = ready
    await recorded_call(env, tmp_path)
    r = await env.call("GET", f"/v1/shops/{SHOP}/calls", "main")
    assert r.status_code == 200, r.text
    assert [c["recording_id"] for c in r.json()["calls"]] == [RID]


async def test_unknown_purged_or_malformed_recordings(ready: Env, tmp_path: Path) -> None:
    env = ready
    vault = await recorded_call(env, tmp_path)
    auditor = (await credentials(env))["auditor"]
    r = await env.client.get(f"/v1/recordings/rec_{'0' * 24}/audio", headers=auditor)
    assert_problem(r, 404, "not_found")
    r = await env.client.get("/v1/recordings/rec_..%2F..%2Fkeys/audio", headers=auditor)
    assert r.status_code in (404, 422)
    assert await vault.purge(env.clock.now + timedelta(days=365)) == 1
    assert_problem(await env.client.get(URL, headers=auditor), 404, "not_found")
