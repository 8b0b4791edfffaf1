"""Recording with notice on the real lab: a shop that records hears the notice first (the caller
before the Dial, the callee on answer before the parties are connected), MixMonitor writes the
call into the spool directory, and privnum encrypts it as the CDR arrives: the file at rest is
encrypted and decrypts to audio of the call (the phones' 440 Hz tone). A call under 3 s keeps
nothing; a SIGKILL between the call's end and the encryption leaves no plaintext once the
service is back; a notice that cannot play is never bridged.

The notice is a sound of this module's own (a copy of ``beep`` under another name), so the
log shows exactly where it played, and removing it makes the notice fail.
"""

from __future__ import annotations

import io
import re
import shutil
import time
import wave
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from agi import channel_vars as cv
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.recording_crypto import MAGIC, decrypt_file
from routing.reasons import Reason
from scripts.asterisk_lab import LAB_RECORDING_DIR
from tests.e2e.ami import AmiClient
from tests.e2e.baresip import BaresipUA
from tests.e2e.conftest import BUYER, MERCHANT, RunningLab
from tests.e2e.privnum_service import DialplanLog, ServiceError, Shop, originate_local, tagged_cdr
from tests.e2e.test_call_rules import RulesStack, rules_stack
from tests.e2e.test_scenarios import bridged_call
from tests.pg import scratch_database

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

MERCHANT_2 = "13800000002"
NOTICE = "privnum-e2e-notice"
SETTLE = 3  # seconds the service waits after the call before it encrypts (room for a kill)
H = cv.CDR_AMI_HEADERS


class RecordingStack(RulesStack):
    def _toml(self) -> str:
        spool = self.lab.root / LAB_RECORDING_DIR.lstrip("/")
        return (super()._toml() + f'notice_sound = "{NOTICE}"\n\n[recordings]\n'
                f'spool_dir = "{spool}"\nasterisk_spool_dir = "{LAB_RECORDING_DIR}"\n'
                f'store_dir = "{self.workdir / "recordings"}"\nsettle_seconds = {SETTLE}\n'
                "sweep_seconds = 1\n")

    @property
    def spool(self) -> Path:
        return self.lab.root / LAB_RECORDING_DIR.lstrip("/")

    @property
    def store(self) -> Path:
        return self.workdir / "recordings"

    def cipher(self) -> BuyerCipher:
        return BuyerCipher(KeyRing.load(self.workdir / "keys.json"))

    def recording(self, binding_id: str, rid: str, timeout: float = 30.0,
                  until: Callable[[dict[str, Any]], bool] = lambda r: True
                  ) -> dict[str, Any]:
        """The binding's recording ``rid`` (a harness retry leaves an earlier call's too)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.query("SELECT * FROM recordings WHERE binding_id = %s AND id = %s",
                              binding_id, rid)
            if rows and until(rows[0]):
                return rows[0]
            if time.monotonic() > deadline:
                raise ServiceError(f"no such recording of {binding_id} within {timeout:.0f} s:"
                                   f" {rows}")
            time.sleep(0.1)


def _sound_dir(lab: RunningLab) -> tuple[Path, Path]:
    found = sorted((lab.root / "usr/share/asterisk/sounds").rglob("beep.*"))
    assert found, "the lab has no beep sound"
    return found[0].parent, found[0]


@pytest.fixture(scope="module")
def notice(asterisk_lab_running: RunningLab) -> Iterator[Path]:
    """The notice sound, installed in the lab for this module (removed afterwards)."""
    directory, beep = _sound_dir(asterisk_lab_running)
    path = directory / f"{NOTICE}{beep.suffix}"
    shutil.copyfile(beep, path)
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def stack(asterisk_lab_running: RunningLab, notice: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingStack]:
    with scratch_database("recording_e2e") as url, rules_stack(
            asterisk_lab_running, tmp_path_factory.mktemp("privnum-recording"), url,
            cls=RecordingStack) as st:
        yield st


@pytest.fixture(autouse=True)
def known_state(stack: RecordingStack, asterisk_lab_running: RunningLab) -> Iterator[None]:
    asterisk_lab_running.cli("channel request hangup all")
    stack.serve.start()
    yield
    asterisk_lab_running.cli("channel request hangup all")


def recording_shop(stack: RecordingStack, tag: str) -> Shop:
    shop = stack.fresh_shop(tag, MERCHANT, MERCHANT_2)
    stack.cli("shop", "rules", shop.shop_id, "--record", "yes")
    return shop


def tone_seconds(wav: bytes) -> float:
    """Seconds of the recording that carry the phones' 440 Hz tone (loud, ~880 zero crossings
    a second), in 100 ms windows."""
    with wave.open(io.BytesIO(wav)) as w:
        rate, width = w.getframerate(), w.getsampwidth()
        frames = w.readframes(w.getnframes())
    assert width == 2, width
    samples = memoryview(frames).cast("h")
    step, toned = rate // 10, 0
    for start in range(0, len(samples) - step, step):
        window = samples[start:start + step]
        loud = sum(abs(s) for s in window) / step > 100
        crossings = sum(1 for a, b in pairwise(window) if (a < 0) != (b < 0))
        toned += loud and 60 <= crossings <= 120  # 880/s over 0.1 s, with room
    return toned / 10


def test_the_call_is_recorded_after_the_notice_and_encrypted(
        stack: RecordingStack, ami: AmiClient, asterisk_lab_running: RunningLab,
        phones: Callable[..., BaresipUA]) -> None:
    lab = asterisk_lab_running
    shop = recording_shop(stack, "rec-ok")
    b = stack.bind(shop, "order-rec", MERCHANT, BUYER)
    merchant = phones("merchant", MERCHANT)
    buyer = phones("buyer", BUYER, auto_answer=True)
    log = DialplanLog(lab)
    mark = [0]
    bridged_call(lab, merchant, buyer, b.x_dialled, ami, mark)
    time.sleep(6)  # a few seconds of conversation
    merchant.hangup()
    cdr = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_BINDING]) == b.binding_id, after=mark[0])
    rid = cdr[H[cv.CDR_RECORDING]]
    assert re.fullmatch(r"rec_[0-9a-f]{24}", rid), cdr
    row = stack.recording(b.binding_id, rid, until=lambda r: r["state"] != "pending")
    assert (row["id"], row["state"], row["shop_id"]) == (rid, "stored", shop.shop_id)
    assert not (stack.spool / f"{rid}.wav").exists()  # no plaintext left
    sealed = stack.store / f"{rid}.pnrec"
    body = sealed.read_bytes()
    assert body.startswith(MAGIC) and b"RIFF" not in body and b"WAVE" not in body
    audio = b"".join(decrypt_file(stack.cipher(), rid, sealed))
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE" and len(audio) == row["size"]
    (stack.workdir / f"{rid}.wav").write_bytes(audio)  # for a person to listen to
    toned = tone_seconds(audio)
    assert toned >= 3, f"the recording holds {toned} s of the call's tone"
    # The notice came first: to the caller before the Dial, to the callee (privnum's Local
    # channel towards the buyer's phone) before the parties were connected.
    text = log.text()
    caller_notice = re.search(rf"<PJSIP/{MERCHANT}-[^>]*> Playing '{NOTICE}\.", text)
    dial = re.search(rf'Dial\("PJSIP/{MERCHANT}-[^"]*", "Local/out@privnum-dial', text)
    callee_notice = re.search(rf"<Local/out@privnum-dial-[^>]*;1> Playing '{NOTICE}\.", text)
    monitor = re.search(rf'MixMonitor\("PJSIP/{MERCHANT}-[^"]*", "[^"]*{rid}\.wav"\)', text)
    assert caller_notice and dial and callee_notice and monitor, text[-4000:]
    assert caller_notice.start() < monitor.start() < dial.start() < callee_notice.start()
    assert "U(privnum-notice^" in text[dial.start():dial.start() + 400]


def test_a_call_under_three_seconds_keeps_nothing(
        stack: RecordingStack, ami: AmiClient, asterisk_lab_running: RunningLab,
        phones: Callable[..., BaresipUA]) -> None:
    lab = asterisk_lab_running
    shop = recording_shop(stack, "rec-short")
    b = stack.bind(shop, "order-short", MERCHANT, BUYER)
    merchant = phones("merchant", MERCHANT)
    buyer = phones("buyer", BUYER, auto_answer=True)
    mark = [0]
    bridged_call(lab, merchant, buyer, b.x_dialled, ami, mark)
    merchant.hangup()
    cdr = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_BINDING]) == b.binding_id, after=mark[0])
    assert int(cdr["BillableSeconds"]) < 3, cdr
    rid = cdr[H[cv.CDR_RECORDING]]
    row = stack.recording(b.binding_id, rid, until=lambda r: r["state"] != "pending")
    assert (row["id"], row["state"]) == (rid, "discarded")
    assert not (stack.spool / f"{rid}.wav").exists()
    assert not (stack.store / f"{rid}.pnrec").exists()


def test_killed_between_the_end_and_the_encryption_leaves_no_plaintext(
        stack: RecordingStack, ami: AmiClient, asterisk_lab_running: RunningLab,
        phones: Callable[..., BaresipUA]) -> None:
    lab = asterisk_lab_running
    shop = recording_shop(stack, "rec-kill")
    b = stack.bind(shop, "order-kill", MERCHANT, BUYER)
    merchant = phones("merchant", MERCHANT)
    buyer = phones("buyer", BUYER, auto_answer=True)
    mark = [0]
    bridged_call(lab, merchant, buyer, b.x_dialled, ami, mark)
    time.sleep(5)
    merchant.hangup()
    rid = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_BINDING]) == b.binding_id,
                     after=mark[0])[H[cv.CDR_RECORDING]]
    # The record arrived and claimed the recording; the service still waits for the file to
    # settle (SETTLE s) when it is killed.
    row = stack.recording(b.binding_id, rid, timeout=SETTLE * 3)
    plain = stack.spool / f"{row['id']}.wav"
    stack.serve.kill()
    assert row["state"] == "pending" and plain.exists(), row
    assert stack.recording(b.binding_id, rid)["state"] == "pending"  # nothing finished it
    stack.serve.start()  # the start-up sweep finishes it
    row = stack.recording(b.binding_id, rid, until=lambda r: r["state"] != "pending")
    assert row["state"] == "stored" and not plain.exists()
    assert not list(stack.spool.glob("*.wav"))
    audio = b"".join(decrypt_file(stack.cipher(), row["id"], stack.store / f"{row['id']}.pnrec"))
    assert audio[:4] == b"RIFF"


def test_a_notice_that_cannot_play_is_never_bridged(
        stack: RecordingStack, ami: AmiClient, asterisk_lab_running: RunningLab,
        notice: Path) -> None:
    lab = asterisk_lab_running
    shop = recording_shop(stack, "rec-silent")
    b = stack.bind(shop, "order-silent", MERCHANT, BUYER)
    hidden = notice.with_name(notice.name + ".away")
    notice.rename(hidden)
    try:
        log = DialplanLog(lab)
        mark = ami.mark()
        originate_local(ami, b.x_dialled, MERCHANT)
        cdr = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_BINDING]) == b.binding_id, after=mark)
    finally:
        hidden.rename(notice)
    assert cdr["DestinationChannel"] == ""  # nobody was dialled
    assert cdr[H[cv.CDR_REASON]] == Reason.ROUTING_ERROR.value  # the fail path, its prompt
    assert cdr[H[cv.CDR_RECORDING]] == ""
    text = log.text()
    assert "Local/out@privnum-dial" not in text and "MixMonitor(" not in text
    assert re.search(rf"Playback\([^)]*\"{NOTICE},noanswer\"\)", text), text[-3000:]
    assert not stack.query("SELECT id FROM recordings WHERE binding_id = %s", b.binding_id)
