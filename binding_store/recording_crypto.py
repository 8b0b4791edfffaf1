"""Recordings encrypted at rest, streamed in chunks with the buyer numbers' key ring.

A recording can be large, so it is never held whole in memory: each chunk of the plaintext is
sealed on its own with :meth:`binding_store.crypto.BuyerCipher.seal` (AES-256-GCM under the
current key, the key id in every chunk, a random nonce per chunk), so rotation and key files
work as for buyer numbers. The authenticated purpose of each chunk binds the recording id, the
chunk's position and whether it is the last: chunks cannot be swapped, reordered, moved to
another recording, or cut off at a chunk boundary without the open failing.

File layout: ``MAGIC`` then, per chunk, a 4-byte big-endian length and the sealed chunk.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from binding_store.crypto import BuyerCipher
from routing.errors import ConfigurationError

MAGIC = b"PNREC1\n"
CHUNK = 64 * 1024
_LENGTH = struct.Struct(">I")
_MAX_SEALED = CHUNK + 512  # a chunk plus its header, nonce and tag, with room


def _purpose(recording_id: str, index: int, last: bool) -> bytes:
    return b"privnum-recording-v1\0%s\0%d\0%d" % (recording_id.encode("ascii"), index,
                                                   int(last))


def encrypt_file(cipher: BuyerCipher, recording_id: str, source: Path, target: Path
                 ) -> tuple[str, int]:
    """Encrypt ``source`` into ``target`` (written beside it as ``.part`` and renamed into place
    once synced, so ``target`` is whole or absent); returns (key id, plaintext bytes)."""
    part = target.with_name(target.name + ".part")
    size = 0
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            out.write(MAGIC)
            index = 0
            chunk = src.read(CHUNK)
            while True:
                ahead = src.read(CHUNK) if chunk else b""
                last = not ahead
                sealed = cipher.seal(chunk, _purpose(recording_id, index, last))
                out.write(_LENGTH.pack(len(sealed)))
                out.write(sealed)
                size += len(chunk)
                if last:
                    break
                chunk, index = ahead, index + 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return cipher.current_key_id, size


def decrypt_chunks(cipher: BuyerCipher, recording_id: str, handle: BinaryIO
                   ) -> Iterator[bytes]:
    """The plaintext of an encrypted recording, chunk by chunk; each chunk is authenticated
    before it is yielded (``ConfigurationError`` on a damaged, truncated or foreign file)."""
    if handle.read(len(MAGIC)) != MAGIC:
        raise ConfigurationError(f"recording {recording_id} is not an encrypted recording")
    index = 0
    head = handle.read(_LENGTH.size)
    while True:
        if len(head) != _LENGTH.size:
            raise ConfigurationError(f"recording {recording_id} is truncated")
        (length,) = _LENGTH.unpack(head)
        if length > _MAX_SEALED:
            raise ConfigurationError(f"recording {recording_id} is damaged")
        sealed = handle.read(length)
        if len(sealed) != length:
            raise ConfigurationError(f"recording {recording_id} is truncated")
        head = handle.read(_LENGTH.size)
        last = not head
        yield cipher.open(sealed, _purpose(recording_id, index, last))
        if last:
            return
        index += 1


def decrypt_file(cipher: BuyerCipher, recording_id: str, path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from decrypt_chunks(cipher, recording_id, handle)
