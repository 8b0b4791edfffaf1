"""Buyer-number encryption at rest (AES-256-GCM, key id in the ciphertext) and the blind index
(HMAC-SHA256 under a separate key) used to look a buyer up by number without decrypting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from routing.errors import ConfigurationError

_VERSION = 1
_NONCE = 12
# Layout: version(1) | key-id length(1) | key id (ascii) | nonce(12) | ciphertext+tag
_AAD = b"privnum-buyer-v1"


@dataclass(frozen=True)
class KeyRing:
    """Encryption keys by id (the newest one encrypts) and the blind-index key (never rotates:
    rotating it would orphan every (B, X) look-up)."""

    keys: dict[str, bytes]
    current: str
    index_key: bytes

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigurationError(
                f"encryption key file {path} not found: run 'privnum keys generate'"
            ) from exc
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read key file {path}: {exc}") from exc
        try:
            keys = {k: base64.b64decode(v, validate=True) for k, v in raw["keys"].items()}
            ring = cls(keys=keys, current=raw["current"],
                       index_key=base64.b64decode(raw["index_key"], validate=True))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigurationError(f"key file {path} is malformed ({exc})") from exc
        if ring.current not in keys or any(len(k) != 32 for k in keys.values()):
            raise ConfigurationError(f"key file {path} is malformed (need 256-bit keys)")
        if len(ring.index_key) < 32:
            raise ConfigurationError(f"key file {path} is malformed (index key too short)")
        return ring

    @classmethod
    def generate(cls) -> KeyRing:
        key_id = _new_key_id()
        return cls(keys={key_id: AESGCM.generate_key(bit_length=256)}, current=key_id,
                   index_key=secrets.token_bytes(32))

    def with_new_key(self) -> KeyRing:
        key_id = _new_key_id()
        return KeyRing(keys={**self.keys, key_id: AESGCM.generate_key(bit_length=256)},
                       current=key_id, index_key=self.index_key)

    def save(self, path: Path) -> None:
        """Write atomically with mode 0600; the old file stays intact until the rename."""
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({
            "current": self.current,
            "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
            "index_key": base64.b64encode(self.index_key).decode(),
        }, indent=2)
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
        os.replace(tmp, path)


def _new_key_id() -> str:
    return datetime.now(UTC).strftime("k%Y%m%d%H%M%S") + secrets.token_hex(2)


class BuyerCipher:
    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._aead = {k: AESGCM(v) for k, v in ring.keys.items()}
        # The keyed state after the key (copied per digest): a new HMAC per call set the key
        # up again each time, half the cost of a blind index on the call path.
        self._index_mac = hmac.new(ring.index_key, digestmod=hashlib.sha256)

    @property
    def current_key_id(self) -> str:
        return self._ring.current

    def has_key(self, key_id: str) -> bool:
        return key_id in self._aead

    def encrypt(self, e164: str) -> bytes:
        return self.seal(e164.encode("ascii"), _AAD)

    def seal(self, data: bytes, purpose: bytes) -> bytes:
        """``data`` encrypted under the current key; ``purpose`` (authenticated, not stored)
        keeps a blob sealed for one use from opening as another."""
        key_id = self._ring.current.encode("ascii")
        nonce = os.urandom(_NONCE)
        sealed = self._aead[self._ring.current].encrypt(nonce, data, purpose)
        return bytes([_VERSION, len(key_id)]) + key_id + nonce + sealed

    def key_id_of(self, blob: bytes) -> str:
        if len(blob) < 2 or blob[0] != _VERSION:
            raise ConfigurationError("buyer ciphertext has an unknown format")
        return blob[2:2 + blob[1]].decode("ascii", errors="replace")

    def decrypt(self, blob: bytes) -> str:
        return self.open(blob, _AAD).decode("ascii")

    def open(self, blob: bytes, purpose: bytes) -> bytes:
        """What ``seal(data, purpose)`` sealed (``ConfigurationError`` if it does not open)."""
        key_id = self.key_id_of(blob)
        aead = self._aead.get(key_id)
        if aead is None:
            raise ConfigurationError(f"buyer number was encrypted with key {key_id!r}, "
                                     "which is not in the key file")
        start = 2 + blob[1]
        try:
            return aead.decrypt(blob[start:start + _NONCE], blob[start + _NONCE:], purpose)
        except InvalidTag as exc:
            raise ConfigurationError(
                f"buyer number does not decrypt with key {key_id!r} (wrong key file?)"
            ) from exc

    def blind_index(self, e164: str) -> str:
        return self._digest(e164.encode("ascii"))

    def keyed_digest(self, data: bytes, purpose: bytes) -> str:
        """HMAC-SHA256 (hex) of ``data`` under the blind-index key, separated by ``purpose``:
        compares like a hash, but cannot be brute-forced without the key file."""
        return self._digest(purpose + b"\0" + data)

    def _digest(self, data: bytes) -> str:
        mac = self._index_mac.copy()
        mac.update(data)
        return mac.hexdigest()
