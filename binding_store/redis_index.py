"""The Redis hot index: what the call path reads first. SQL stays the system of record.

Keys (all under ``prefix``):

- ``{p}:ax:{A}:{X}`` and ``{p}:bx:{B-blind-index}:{X}``: one active binding each, as JSON
  (binding id, shop, order, A, X, blind index, B's *ciphertext* in base64, expiry in epoch ms),
  expiring at the binding's expiry. A plaintext buyer number is never written.
- ``{p}:shop:{shop}``: the shop's service state (``enabled`` ...).
- ``{p}:caller:{shop}:{A}``: a caller number's status (``approved`` ..., ``removed``).

Who writes what: the binding store writes/deletes the binding keys around its SQL commits; the
shop and caller repositories call :meth:`RedisIndex.set_shop_state` and
:meth:`RedisIndex.set_caller_status` after committing a change (a removed caller number gets
the tombstone ``removed``, never a bare delete, so a concurrent seed cannot resurrect an old
``approved``). The call path seeds missing state keys from SQL (``SET NX``). State keys live
``state_ttl`` seconds: should a repository's write be lost (Redis unreachable from it but not
from the call path), a stale state outlives the change by at most that long. A missing state
key makes the call path read SQL, so an index that lags is slower, never wrong;
``privnum index rebuild`` reconciles everything.

Every call is bounded by ``timeout``; Redis faults become ``StoreUnavailable`` here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from binding_store.db import Database
from binding_store.models import Binding, CallerNumber, Shop
from routing.errors import StoreUnavailable

T = TypeVar("T")
Progress = Callable[[str, int, int], None]  # (stage, done, total)

# Delete each key only while it still holds this binding id (a newer binding may own it).
_FORGET = """
local n = 0
for _, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v and cjson.decode(v)['id'] == ARGV[1] then n = n + redis.call('DEL', k) end
end
return n
"""


log = logging.getLogger(__name__)

# One round trip for the call path: both binding keys and the shop/caller states they name.
# (Reads keys it derives itself: fine on a standalone or replicated Redis, not on a cluster.)
_LOOKUP = """
local out = {false, false, false, false, false, false}
for i = 1, 2 do
  local v = redis.call('GET', KEYS[i])
  if v then
    out[i] = v
    local d = cjson.decode(v)
    out[1 + 2 * i] = redis.call('GET', ARGV[1] .. ':shop:' .. d['shop'])
    out[2 + 2 * i] = redis.call('GET', ARGV[1] .. ':caller:' .. d['shop'] .. ':' .. d['a'])
  end
end
return out
"""

REMOVED = "removed"
DEFAULT_STATE_TTL = 300


@dataclass(frozen=True)
class IndexedPair:
    """What the index holds for a call: each binding with its shop state and caller status
    (``None`` where the index does not know)."""

    ax: IndexEntry | None
    ax_shop: str | None
    ax_caller: str | None
    bx: IndexEntry | None
    bx_shop: str | None
    bx_caller: str | None


@dataclass(frozen=True)
class IndexEntry:
    binding_id: str
    shop_id: str
    order_id: str
    caller_a: str
    virtual_x: str
    buyer_bidx: str
    buyer_cipher: bytes
    expires_at: datetime

    @classmethod
    def of(cls, row: Binding) -> IndexEntry:
        return cls(row.id, row.shop_id, row.order_id, row.caller_a, row.virtual_x,
                   row.buyer_bidx, bytes(row.buyer_cipher), row.expires_at)

    def dumps(self) -> str:
        return json.dumps({
            "id": self.binding_id, "shop": self.shop_id, "order": self.order_id,
            "a": self.caller_a, "x": self.virtual_x, "bidx": self.buyer_bidx,
            "b": base64.b64encode(self.buyer_cipher).decode("ascii"),
            "exp": _ms(self.expires_at),
        }, separators=(",", ":"))

    @classmethod
    def loads(cls, raw: bytes | str) -> IndexEntry:
        d = json.loads(raw)
        return cls(d["id"], d["shop"], d["order"], d["a"], d["x"], d["bidx"],
                   base64.b64decode(d["b"]), datetime.fromtimestamp(d["exp"] / 1000, UTC))


@dataclass(frozen=True)
class RebuildReport:
    bindings: int
    shops: int
    callers: int
    removed: int


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class RedisIndex:
    def __init__(self, client: Redis, *, prefix: str, timeout: float,
                 state_ttl: int = DEFAULT_STATE_TTL) -> None:
        self._redis = client
        self.prefix = prefix
        self.timeout = timeout
        self.state_ttl = state_ttl
        self._forget_script = client.register_script(_FORGET)
        self._lookup_script = client.register_script(_LOOKUP)

    @classmethod
    def from_url(cls, url: str, *, prefix: str, timeout: float,
                 state_ttl: int = DEFAULT_STATE_TTL) -> RedisIndex:
        client = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return cls(client, prefix=prefix, timeout=timeout, state_ttl=state_ttl)

    async def close(self) -> None:
        await self._redis.aclose()

    # -- keys ---------------------------------------------------------------------------
    def ax_key(self, caller_a: str, virtual_x: str) -> str:
        return f"{self.prefix}:ax:{caller_a}:{virtual_x}"

    def bx_key(self, buyer_bidx: str, virtual_x: str) -> str:
        return f"{self.prefix}:bx:{buyer_bidx}:{virtual_x}"

    def shop_key(self, shop_id: str) -> str:
        return f"{self.prefix}:shop:{shop_id}"

    def caller_key(self, shop_id: str, number: str) -> str:
        return f"{self.prefix}:caller:{shop_id}:{number}"

    # -- the edge -----------------------------------------------------------------------
    async def _call(self, work: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await work()
        except TimeoutError as exc:
            raise StoreUnavailable(f"Redis did not answer within {self.timeout:g} s") from exc
        except RedisError as exc:
            raise StoreUnavailable(f"Redis unavailable: {type(exc).__name__}") from exc
        except OSError as exc:
            raise StoreUnavailable(f"Redis unavailable: {exc.strerror or exc}") from exc

    async def ping(self) -> None:
        await self._call(self._redis.ping)

    # -- bindings -------------------------------------------------------------------------
    async def put(self, entries: Sequence[IndexEntry], *, now: datetime | None = None) -> None:
        """Write (A, X) and (B, X) keys that expire with their binding."""
        now = now or datetime.now(UTC)
        live = [e for e in entries if e.expires_at > now]
        if not live:
            return

        async def work() -> None:
            pipe = self._redis.pipeline(transaction=False)
            for e in live:
                value = e.dumps()
                # A duration from our own clock: Redis's clock may disagree with ours.
                ttl = max(1, _ms(e.expires_at) - _ms(now))
                pipe.set(self.ax_key(e.caller_a, e.virtual_x), value, px=ttl)
                pipe.set(self.bx_key(e.buyer_bidx, e.virtual_x), value, px=ttl)
            await pipe.execute()

        await self._call(work)

    async def forget(self, entry: IndexEntry) -> None:
        """Delete a binding's keys (only where they still hold this binding)."""
        keys = [self.ax_key(entry.caller_a, entry.virtual_x),
                self.bx_key(entry.buyer_bidx, entry.virtual_x)]
        await self._call(lambda: self._forget_script(keys=keys, args=[entry.binding_id]))

    async def lookup(self, caller: str, caller_bidx: str, virtual_x: str) -> IndexedPair:
        """(caller as A, X) and (caller as B, X) with their states: one round trip."""
        keys = [self.ax_key(caller, virtual_x), self.bx_key(caller_bidx, virtual_x)]

        async def work() -> list[Any]:
            return list(await self._lookup_script(keys=keys, args=[self.prefix]))

        raw = await self._call(work)
        ax_raw, bx_raw, *states = (raw + [None] * 6)[:6]
        text = [v.decode() if isinstance(v, bytes) else v for v in states]
        return IndexedPair(
            ax=IndexEntry.loads(ax_raw) if ax_raw else None, ax_shop=text[0], ax_caller=text[1],
            bx=IndexEntry.loads(bx_raw) if bx_raw else None, bx_shop=text[2], bx_caller=text[3])

    # -- shop and caller states -------------------------------------------------------------
    async def set_shop_state(self, shop_id: str, state: str | None) -> None:
        """Call after committing a shop's service-state change (None: the shop is gone)."""
        key = self.shop_key(shop_id)
        await self._call(lambda: self._redis.set(key, state or REMOVED, ex=self.state_ttl))

    async def set_caller_status(self, shop_id: str, number: str, status: str | None) -> None:
        """Call after committing a caller number's status change; ``None`` when it is removed."""
        key = self.caller_key(shop_id, number)
        await self._call(lambda: self._redis.set(key, status or REMOVED, ex=self.state_ttl))

    async def seed_states(self, shops: Sequence[tuple[str, str]],
                          callers: Sequence[tuple[str, str, str]]) -> None:
        """Fill missing state keys from SQL (``SET NX``: never over a repository's write)."""
        async def work() -> None:
            pipe = self._redis.pipeline(transaction=False)
            for shop_id, state in shops:
                pipe.set(self.shop_key(shop_id), state, nx=True, ex=self.state_ttl)
            for shop_id, number, status in callers:
                pipe.set(self.caller_key(shop_id, number), status, nx=True, ex=self.state_ttl)
            await pipe.execute()

        if shops or callers:
            await self._call(work)

    # -- rebuild ----------------------------------------------------------------------------
    async def rebuild(self, database: Database, *, now: datetime | None = None,
                      progress: Progress | None = None, batch: int = 500) -> RebuildReport:
        """Restore every key from SQL and delete keys SQL does not back."""
        now = now or datetime.now(UTC)
        report = progress or (lambda _stage, _done, _total: None)
        live_ids: set[str] = set()
        async with database.session() as session:
            rows = (await session.execute(
                select(Binding).where(Binding.state == "active", Binding.expires_at > now)
                .order_by(Binding.id))).scalars().all()
            shops = (await session.execute(select(Shop.id, Shop.service_state))).all()
            callers = (await session.execute(
                select(CallerNumber.shop_id, CallerNumber.number, CallerNumber.status))).all()
        for start in range(0, len(rows), batch):
            chunk = [IndexEntry.of(r) for r in rows[start:start + batch]]
            await self.put(chunk, now=now)
            live_ids.update(e.binding_id for e in chunk)
            report("bindings", min(start + batch, len(rows)), len(rows))
        report("bindings", len(rows), len(rows))
        wanted = {self.shop_key(s): st for s, st in shops}
        wanted.update({self.caller_key(s, n): st for s, n, st in callers})
        items = list(wanted.items())
        for start in range(0, len(items), batch):
            await self._set_many(items[start:start + batch])
            report("states", min(start + batch, len(items)), len(items))
        removed = await self._sweep(live_ids, set(wanted))
        report("cleanup", removed, removed)
        return RebuildReport(bindings=len(rows), shops=len(shops), callers=len(callers),
                             removed=removed)

    async def _set_many(self, items: Sequence[tuple[str, str]]) -> None:
        async def work() -> None:
            pipe = self._redis.pipeline(transaction=False)
            for key, value in items:
                pipe.set(key, value, ex=self.state_ttl)
            await pipe.execute()

        await self._call(work)

    async def _sweep(self, live_ids: set[str], state_keys: set[str]) -> int:
        removed = 0
        for kind in ("ax", "bx", "shop", "caller"):
            async for keys in self._scan(f"{self.prefix}:{kind}:*"):
                if kind in ("shop", "caller"):
                    stale = [k for k in keys if k not in state_keys]
                else:
                    raw = await self._mget(keys)
                    stale = [k for k, v in zip(keys, raw, strict=True)
                             if v is not None and IndexEntry.loads(v).binding_id not in live_ids]
                if stale:
                    removed += await self._delete(stale)
        return removed

    async def _mget(self, keys: Sequence[str]) -> list[Any]:
        async def work() -> list[Any]:
            return list(await self._redis.mget(keys))

        return await self._call(work)

    async def _delete(self, keys: Sequence[str]) -> int:
        async def work() -> int:
            return int(await self._redis.delete(*keys))

        return await self._call(work)

    async def _scan(self, pattern: str) -> AsyncIterator[list[str]]:
        cursor = 0
        while True:
            async def work(at: int = cursor) -> tuple[int, list[Any]]:
                next_cursor, found = await self._redis.scan(cursor=at, match=pattern, count=1000)
                return int(next_cursor), list(found)

            cursor, found = await self._call(work)
            keys = [k.decode() if isinstance(k, bytes) else k for k in found]
            if keys:
                yield keys
            if cursor == 0:
                return


async def publish_state(index: RedisIndex | None, shop_id: str, *,
                        shop_state: str | None = None,
                        callers: Sequence[tuple[str, str | None]] = ()) -> None:
    """Push states a repository has just committed (best effort: a failure is logged and is
    bounded by the keys' lifetime, see the module notes)."""
    if index is None:
        return
    try:
        if shop_state is not None:
            await index.set_shop_state(shop_id, shop_state)
        for number, status in callers:
            await index.set_caller_status(shop_id, number, status)
    except StoreUnavailable as exc:
        log.warning("state change of shop %s not pushed to Redis (%s); the call path may see "
                    "the old state for up to %d s", shop_id, exc, index.state_ttl)
