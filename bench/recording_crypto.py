"""``python -m bench recording_crypto``: how much encrypting a recording at rest costs against
copying the same file (the baseline, measured in the same run): a one-hour 8 kHz 16-bit mono
recording (~57.6 MB), chunked AES-256-GCM with the buyer numbers' key ring."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.recording_crypto import decrypt_file, encrypt_file

RID = "rec_" + "0" * 24
SECONDS = 3_600
BYTES_PER_SECOND = 16_000
ROUNDS = 3


def _best(run: object) -> float:
    assert callable(run)
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    cipher = BuyerCipher(KeyRing.generate())
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "call.wav"
        plain.write_bytes(os.urandom(SECONDS * BYTES_PER_SECOND))
        copy_s = _best(lambda: shutil.copyfile(plain, Path(tmp) / "copy.wav"))
        enc_s = _best(lambda: encrypt_file(cipher, RID, plain, Path(tmp) / "call.pnrec"))
        dec_s = _best(lambda: sum(len(c) for c in decrypt_file(cipher, RID,
                                                                Path(tmp) / "call.pnrec")))
        size = plain.stat().st_size
        sealed = (Path(tmp) / "call.pnrec").stat().st_size
    mb = size / 1e6
    print(f"one-hour recording: {mb:.1f} MB, encrypted {sealed / size - 1:.2%} larger")
    print(f"copy (baseline)  {copy_s * 1000:8.1f} ms  {mb / copy_s:8.0f} MB/s  1.00x")
    print(f"encrypt          {enc_s * 1000:8.1f} ms  {mb / enc_s:8.0f} MB/s  "
          f"{enc_s / copy_s:.2f}x")
    print(f"decrypt (stream) {dec_s * 1000:8.1f} ms  {mb / dec_s:8.0f} MB/s  "
          f"{dec_s / copy_s:.2f}x")


if __name__ == "__main__":
    main()
