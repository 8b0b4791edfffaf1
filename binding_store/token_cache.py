"""Verified bearer tokens kept a few seconds in this process, so a busy client's requests do
not each read its token from the database (a pool check-out and a query per request, a
quarter of a reveal's cost).

Only tokens that verified, and whose account exists, are kept, under the SHA-256 of the
presented string (never the token itself); an unknown or wrong token always reaches the
database. An entry ends at the earliest of: ``seconds`` after it was read, the token's own
expiry (exact, on the service's clock), a revocation through this process (at once: a token
revoked, an account removed). A revocation made elsewhere (another ``privnum`` process, the
CLI) or a change to the token's account (moved to another shop) applies within ``seconds``.
``seconds = 0`` keeps nothing.
"""

from __future__ import annotations

import builtins
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from binding_store.tokens import TokenStore, hash_token, token_id_of
from routing.api_ports import Principal, PrincipalKind
from routing.token_ports import IssuedToken, TokenView


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    fresh_until: float  # on the monotonic clock
    expires_at: datetime | None  # the token's own expiry, on the service's clock


class CachedTokens:
    """A ``TokenPort``: ``TokenStore`` with verified tokens kept up to ``seconds``."""

    def __init__(self, store: TokenStore, seconds: float, *, max_entries: int = 10_000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._seconds = seconds
        self._max = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    async def verify(self, token: str, now: datetime) -> Principal | None:
        if self._seconds <= 0:
            return await self._store.verify(token, now)
        digest = hash_token(token)
        entry = self._entries.get(digest)
        if entry is not None:
            if self._monotonic() < entry.fresh_until and (
                    entry.expires_at is None or now < entry.expires_at):
                return entry.principal
            del self._entries[digest]
        found = await self._store.verify_with_expiry(token, now)
        if found is None:
            return None
        who, expires_at = found
        if who.kind is PrincipalKind.ACCOUNT and who.role is None:
            # the account does not exist yet (a main account's token comes before the shop
            # is enabled): its role appears with it, so the next request reads again
            return who
        self._entries[digest] = _Entry(who, self._monotonic() + self._seconds, expires_at)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)  # the oldest read
        return who

    def forget(self, token_id: str) -> None:
        """Drop every kept entry of ``token_id`` (it was revoked)."""
        self._drop(lambda who: who.token_id == token_id)

    def forget_account(self, account_id: str) -> None:
        """Drop the kept tokens of ``account_id`` (its tokens were revoked)."""
        self._drop(lambda who: who.account_id == account_id)

    def _drop(self, match: Callable[[Principal], bool]) -> None:
        for digest in [d for d, e in self._entries.items() if match(e.principal)]:
            del self._entries[digest]

    async def revoke(self, token_id: str, *, now: datetime, actor: str = "cli") -> None:
        try:
            await self._store.revoke(token_id, now=now, actor=actor)
        finally:
            # also when the revocation failed half-way: the next request reads the database
            self.forget(token_id_of(token_id) or token_id.strip())

    async def issue(self, *, now: datetime, admin: bool = False,
                    kind: PrincipalKind | None = None, shop_id: str | None = None,
                    account_id: str | None = None, shops: Sequence[str] = (), label: str = "",
                    expires_at: datetime | None = None, actor: str = "cli") -> IssuedToken:
        return await self._store.issue(now=now, admin=admin, kind=kind, shop_id=shop_id,
                                       account_id=account_id, shops=shops, label=label,
                                       expires_at=expires_at, actor=actor)

    async def get(self, token_id: str) -> TokenView:
        return await self._store.get(token_id)

    async def list(self, shop_id: str | None = None) -> builtins.list[TokenView]:
        return await self._store.list(shop_id)
