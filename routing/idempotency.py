"""Idempotency keys: the rules and the port.

A client sends ``Idempotency-Key`` with a request that changes something; the first request
with a key is run and its response kept, a repeat (same credential, same key, same request) is
answered with the kept response instead of being run again, and the same key with a different
request is refused. The keys live in a store (``IdempotencyStore``, implemented in
``binding_store``) so that every process serving the API sees the same ones; the use case is
``routing.usecases.idempotency``. Pure: no clock, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from routing.errors import InvalidIdempotencyKey

MAX_KEY_LENGTH = 255


def check_key(key: str) -> str:
    """The key as given, if it is 1-255 visible ASCII characters (a UUID is the usual choice);
    else ``InvalidIdempotencyKey``. The message never echoes the key."""
    if not key:
        raise InvalidIdempotencyKey("Idempotency-Key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidIdempotencyKey(f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters")
    if not all("!" <= c <= "~" for c in key):
        raise InvalidIdempotencyKey("Idempotency-Key must be visible ASCII characters "
                                    "(no spaces), e.g. a UUID")
    return key


def request_digest(method: str, path: str, query: str, body: bytes,
                   headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """SHA-256 of what makes two requests "the same": method, path, query string, the body (a
    JSON body in canonical form, so spacing and key order do not matter) and the given headers
    (those that change what a request does, such as the account acted for)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                               ensure_ascii=True).encode() if body.strip() else b""
    except (ValueError, UnicodeDecodeError):
        canonical = body  # not JSON: the handler will refuse it; compare the bytes
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode()):
        digest.update(len(part).to_bytes(4, "big") + part)
    for name, value in sorted((n.lower(), v) for n, v in headers):
        item = f"{name}:{value}".encode()
        digest.update(len(item).to_bytes(4, "big") + item)
    digest.update(canonical)
    return digest.digest()


def kept(status: int) -> bool:
    """Whether a response is kept for repeats: a success or a refusal the request itself
    earned (a repeat would be refused the same way). Not kept, so a repeat runs again: a 5xx
    (nothing was done: privnum fails closed), and the "try again" answers 401 (no credential,
    so no key scope), 408, 413, 415 (the body never reached the handler) and 429."""
    if status >= 500 or status < 200:
        return False
    return status not in {401, 408, 413, 415, 429}


@dataclass(frozen=True)
class StoredResponse:
    status: int
    content_type: str
    body: bytes


class ClaimState(StrEnum):
    CLAIMED = "claimed"  # new (or taken over): run the request, then complete or abandon
    REPLAY = "replay"  # done before: answer with ``response``
    MISMATCH = "mismatch"  # the key was used for a different request
    IN_PROGRESS = "in_progress"  # a request with this key is running now


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    claim_id: str = ""  # CLAIMED: what ``complete``/``abandon`` name
    response: StoredResponse | None = None  # REPLAY


class IdempotencyStore(Protocol):
    """Keys per (scope, key). The store keeps neither the key, the request nor the response
    in the clear (a request can hold a buyer number): keyed digests and a sealed body."""

    async def claim(self, scope: str, key: str, digest: bytes, *, now: datetime,
                    lease_until: datetime, expires_at: datetime) -> Claim:
        """Atomically: a new key (or one whose row expired, or whose running request's lease
        ran out, with the same digest) is claimed for the caller; otherwise the state of the
        existing one. Two concurrent claims of one key never both get ``CLAIMED``."""
        ...

    async def complete(self, scope: str, key: str, claim_id: str,
                       response: StoredResponse) -> None:
        """Keep ``response`` for the claimed key (until its ``expires_at``)."""
        ...

    async def abandon(self, scope: str, key: str, claim_id: str) -> None:
        """Forget a claim whose request is not to be remembered (a repeat runs again)."""
        ...

    async def purge(self, now: datetime, limit: int = 1000) -> int:
        """Delete up to ``limit`` keys past their ``expires_at``; how many were deleted."""
        ...
