"""Idempotency keys: a request that carries one runs once per (credential, key).

A front door asks :meth:`Idempotency.begin` before it runs a request. The answer is either a
kept response to send back as it is, or a claim: the front door runs the request and then
:meth:`~Idempotency.finish` keeps its response (or forgets the claim when the response is not
one to keep, ``routing.idempotency.kept``). A key is scoped to the credential (token) that sent
it, so two clients cannot see each other's responses or collide on a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from routing.api_ports import Principal
from routing.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from routing.idempotency import (
    ClaimState,
    IdempotencyStore,
    StoredResponse,
    check_key,
    kept,
)

DEFAULT_TTL = timedelta(hours=24)
# How long a running request holds its key: past it (the process died mid-request) a repeat
# with the same request may run. Longer than any request can take (body deadline, store
# time-outs); shorter than a client's patience.
LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Begun:
    """``replay``: send it back; else run the request and ``finish`` with this ticket."""

    scope: str
    key: str
    claim_id: str = ""
    replay: StoredResponse | None = None


@dataclass
class Idempotency:
    store: IdempotencyStore
    ttl: timedelta = DEFAULT_TTL

    async def begin(self, who: Principal, key: str, digest: bytes, now: datetime) -> Begun:
        """``digest``: ``routing.idempotency.request_digest`` of the request. Raises
        ``InvalidIdempotencyKey``, ``IdempotencyKeyReused`` (same key, other request) or
        ``IdempotencyKeyInUse`` (the first request with it is still running)."""
        check_key(key)
        scope = who.token_id
        claim = await self.store.claim(scope, key, digest, now=now, lease_until=now + LEASE,
                                       expires_at=now + self.ttl)
        if claim.state is ClaimState.REPLAY:
            assert claim.response is not None
            return Begun(scope=scope, key=key, replay=claim.response)
        if claim.state is ClaimState.MISMATCH:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request (method, path, "
                "body or account); use a new key for a new request")
        if claim.state is ClaimState.IN_PROGRESS:
            raise IdempotencyKeyInUse(
                "a request with this Idempotency-Key is still running; retry shortly")
        return Begun(scope=scope, key=key, claim_id=claim.claim_id)

    async def finish(self, begun: Begun, response: StoredResponse | None) -> None:
        """Keep ``response`` for repeats, or forget the claim (``None``: the request failed
        before answering; or a response that is not kept)."""
        if begun.replay is not None:
            return
        if response is not None and kept(response.status):
            await self.store.complete(begun.scope, begun.key, begun.claim_id, response)
        else:
            await self.store.abandon(begun.scope, begun.key, begun.claim_id)

    async def purge(self, now: datetime, batch: int = 1000) -> int:
        """Delete the keys past their time; how many."""
        total = 0
        while (n := await self.store.purge(now, batch)) > 0:
            total += n
            if n < batch:
                break
        return total
