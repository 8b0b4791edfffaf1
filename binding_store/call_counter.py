"""Call caps counted atomically: in Redis (one Lua script per call: every party checked, then
every party counted, or nothing) or in SQL (the parties' lock rows held while they are counted).

Both measure the rolling hour and day on their own server's clock (Redis ``TIME``, the
database's clock), never the caller's, and keys expire by relative TTLs, so no two clocks are
ever compared. A buyer is counted under the blind index of its number, never in clear. Every
infrastructure fault becomes ``StoreUnavailable``: the call is refused, never put through past
a cap."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from binding_store.call_rules_models import CallCapEvent, CallCapLock
from binding_store.crypto import BuyerCipher
from binding_store.db import Database, guard
from routing.call_caps import DAY_SECONDS, HOUR_SECONDS, CapSubject, Counted, broken
from routing.errors import StoreUnavailable

ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local hour = tonumber(ARGV[2]) * 1000000
local day = tonumber(ARGV[3]) * 1000000
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - day)
  local cap_hour = tonumber(ARGV[2 + 2 * i])
  local cap_day = tonumber(ARGV[3 + 2 * i])
  if cap_day > 0 and redis.call('ZCARD', key) >= cap_day then return i end
  if cap_hour > 0 and redis.call('ZCOUNT', key, '(' .. (now - hour), '+inf') >= cap_hour then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[3]) * 1000 + 60000)
end
return 0
"""


def subject_key(party: Counted, cipher: BuyerCipher) -> str:
    key = cipher.blind_index(party.key) if party.subject is CapSubject.BUYER else party.key
    return f"{party.subject.value}:{key}"


class RedisCallCounter:
    """Implements ``routing.call_caps.CallCounter`` on Redis (sorted sets of call times)."""

    def __init__(self, client: Redis, prefix: str, cipher: BuyerCipher, *,
                 timeout: float = 0.5) -> None:
        self._client = client
        self._prefix = prefix
        self._cipher = cipher
        self._timeout = timeout
        self._admit = client.register_script(ADMIT)

    async def admit(self, counted: Sequence[Counted]) -> CapSubject | None:
        if not counted:
            return None
        keys = [f"{self._prefix}:cap:{subject_key(p, self._cipher)}" for p in counted]
        args: list[Any] = [uuid.uuid4().hex, HOUR_SECONDS, DAY_SECONDS]
        for party in counted:
            args += [party.cap.hour, party.cap.day]
        try:
            async with asyncio.timeout(self._timeout):
                found = int(await self._admit(keys=keys, args=args))
        except TimeoutError as exc:
            raise StoreUnavailable("call caps: Redis did not answer in time") from exc
        except (RedisError, OSError, ValueError) as exc:
            raise StoreUnavailable(f"call caps: Redis unavailable: {type(exc).__name__}"
                                   ) from exc
        return counted[found - 1].subject if found else None


_NOW_US = {
    "postgresql": "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
    "sqlite": "SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)",
}


class SqlCallCounter:
    """Implements ``routing.call_caps.CallCounter`` in SQL: the parties' lock rows (in key
    order, so two calls never wait on each other crosswise) are held while the calls of the
    last day are counted and this one is added."""

    def __init__(self, database: Database, cipher: BuyerCipher) -> None:
        self._db = database
        self._cipher = cipher

    async def admit(self, counted: Sequence[Counted]) -> CapSubject | None:
        if not counted:
            return None
        keys = {subject_key(p, self._cipher): p for p in counted}
        ordered = sorted(keys)
        upsert = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        try:
            async with guard(self._db.timeout * 5), self._db.session() as session:
                # a write first: on SQLite it takes the database's write lock for the whole count
                await session.execute(upsert(CallCapLock).on_conflict_do_nothing(),
                                      [{"subject_key": k} for k in ordered])
                await session.execute(select(CallCapLock.subject_key).where(
                    CallCapLock.subject_key.in_(ordered)).order_by(
                    CallCapLock.subject_key).with_for_update())
                now = int((await session.execute(text(_NOW_US[self._db.dialect]))).scalar_one())
                day_ago, hour_ago = now - DAY_SECONDS * 1_000_000, now - HOUR_SECONDS * 1_000_000
                await session.execute(delete(CallCapEvent).where(
                    CallCapEvent.subject_key.in_(ordered), CallCapEvent.at_us <= day_ago))
                rows = (await session.execute(
                    select(CallCapEvent.subject_key, func.count(),
                           func.count().filter(CallCapEvent.at_us > hour_ago))
                    .where(CallCapEvent.subject_key.in_(ordered))
                    .group_by(CallCapEvent.subject_key))).all()
                counts = {str(k): (int(h), int(d)) for k, d, h in rows}
                over = broken([replace(p, key=k) for k, p in keys.items()], counts)
                if over is not None:
                    await session.rollback()
                    return over
                await session.execute(insert(CallCapEvent),
                                      [{"subject_key": k, "at_us": now} for k in ordered])
                await session.commit()
                return None
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"call caps: database error: {type(exc).__name__}") from exc
