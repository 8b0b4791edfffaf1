"""Idempotency keys in SQL (``routing.idempotency.IdempotencyStore``), SQLite and PostgreSQL.

A key is claimed by inserting its row: the primary key (scope, key digest) lets exactly one of
two concurrent requests insert it (``INSERT … ON CONFLICT DO NOTHING RETURNING``); the other
reads the row and learns that the key is in use, done or used for another request. A row that
expired, or whose request's lease ran out (the process died mid-request), is taken over by a
conditional ``UPDATE … WHERE claim_id = <the one read>``, which again only one can win.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.idempotency_models import IdempotencyKey
from routing.idempotency import Claim, ClaimState, StoredResponse

_KEY = b"idempotency-key"
_REQUEST = b"idempotency-request"
_BODY = b"privnum-idempotent-response-v1"
PENDING, DONE = "pending", "done"
_ATTEMPTS = 3  # a row can vanish (purged, abandoned) between the insert and the read
_TABLE = cast(Table, IdempotencyKey.__table__)


class SqlIdempotencyStore:
    def __init__(self, db: Database, cipher: BuyerCipher) -> None:
        self._db = db
        self._cipher = cipher
        self._insert: Any = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    def _key(self, key: str) -> str:
        return self._cipher.keyed_digest(key.encode(), _KEY)

    async def claim(self, scope: str, key: str, digest: bytes, *, now: datetime,
                    lease_until: datetime, expires_at: datetime) -> Claim:
        key_digest = self._key(key)
        request = self._cipher.keyed_digest(digest, _REQUEST)
        claim_id = secrets.token_hex(16)
        fresh = {"request_digest": request, "claim_id": claim_id, "state": PENDING,
                 "status": None, "content_type": None, "body": None, "created_at": now,
                 "lease_until": lease_until, "expires_at": expires_at}
        table = _TABLE
        row_of = (table.c.scope == scope) & (table.c.key_digest == key_digest)
        for _ in range(_ATTEMPTS):
            async with self._db.session() as session:
                inserted = (await session.execute(
                    self._insert(table).values(scope=scope, key_digest=key_digest, **fresh)
                    .on_conflict_do_nothing(index_elements=[table.c.scope, table.c.key_digest])
                    .returning(table.c.claim_id))).scalar_one_or_none()
                if inserted is not None:
                    await session.commit()
                    return Claim(ClaimState.CLAIMED, claim_id=claim_id)
                row = (await session.execute(select(
                    table.c.request_digest, table.c.claim_id, table.c.state, table.c.status,
                    table.c.content_type, table.c.body, table.c.lease_until,
                    table.c.expires_at).where(row_of))).one_or_none()
                if row is None:
                    continue
                expired = row.expires_at <= now
                same = row.request_digest == request
                if not expired and not same:
                    return Claim(ClaimState.MISMATCH)
                if not expired and row.state == DONE:
                    return Claim(ClaimState.REPLAY, response=StoredResponse(
                        status=int(row.status), content_type=str(row.content_type),
                        body=self._cipher.open(bytes(row.body), _BODY)))
                if not expired and row.lease_until > now:
                    return Claim(ClaimState.IN_PROGRESS)
                taken = await session.execute(
                    update(table).where(row_of, table.c.claim_id == row.claim_id).values(**fresh))
                await session.commit()
                if getattr(taken, "rowcount", 0) == 1:
                    return Claim(ClaimState.CLAIMED, claim_id=claim_id)
        return Claim(ClaimState.IN_PROGRESS)  # contended past all attempts: ask to retry

    async def complete(self, scope: str, key: str, claim_id: str,
                       response: StoredResponse) -> None:
        table = _TABLE
        async with self._db.session() as session:
            await session.execute(
                update(table)
                .where(table.c.scope == scope, table.c.key_digest == self._key(key),
                       table.c.claim_id == claim_id)
                .values(state=DONE, status=response.status,
                        content_type=response.content_type[:100],
                        body=self._cipher.seal(response.body, _BODY)))
            await session.commit()

    async def abandon(self, scope: str, key: str, claim_id: str) -> None:
        table = _TABLE
        async with self._db.session() as session:
            await session.execute(
                delete(table).where(table.c.scope == scope,
                                    table.c.key_digest == self._key(key),
                                    table.c.claim_id == claim_id))
            await session.commit()

    async def purge(self, now: datetime, limit: int = 1000) -> int:
        table = _TABLE
        due = (select(table.c.scope, table.c.key_digest)
               .where(table.c.expires_at <= now).limit(limit))
        async with self._db.session() as session:
            result = await session.execute(
                delete(table).where(tuple_(table.c.scope, table.c.key_digest).in_(due),
                                    table.c.expires_at <= now))
            await session.commit()
        return int(getattr(result, "rowcount", 0) or 0)
