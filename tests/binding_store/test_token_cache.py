"""Verified tokens kept a few seconds (SQLite and PostgreSQL): revoked or expired tokens stop
within the documented delay, at once when revoked through the same process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from binding_store.accounts import AccountRepository
from binding_store.db import Database
from binding_store.token_cache import CachedTokens
from binding_store.tokens import TokenStore
from routing.api_ports import PrincipalKind
from routing.model import AccountRole
from tests.binding_store.shop_helpers import NOW, enabled_shop

SECONDS = 5.0


@dataclass
class Monotonic:
    value: float = 1000.0

    def __call__(self) -> float:
        return self.value


async def test_a_token_revoked_elsewhere_stops_within_the_delay(database: Database) -> None:
    await enabled_shop(database, "s1")
    elsewhere = TokenStore(database)  # the CLI, another privnum process
    issued = await elsewhere.issue(now=NOW, shop_id="s1", account_id="s1-main")
    clock = Monotonic()
    tokens = CachedTokens(TokenStore(database), SECONDS, monotonic=clock)
    who = await tokens.verify(issued.secret, NOW)
    assert who is not None and who.account_id == "s1-main" and who.role is AccountRole.MAIN

    await elsewhere.revoke(issued.token_id, now=NOW)
    clock.value += SECONDS - 0.5
    assert await tokens.verify(issued.secret, NOW) == who  # still kept
    clock.value += 0.5
    assert await tokens.verify(issued.secret, NOW) is None  # read again: revoked


async def test_a_token_revoked_here_stops_at_once(database: Database) -> None:
    await enabled_shop(database, "s1")
    tokens = CachedTokens(TokenStore(database), SECONDS, monotonic=Monotonic())
    issued = await tokens.issue(now=NOW, shop_id="s1", account_id="s1-sub1")
    other = await tokens.issue(now=NOW, shop_id="s1", account_id="s1-main")
    assert await tokens.verify(issued.secret, NOW) is not None
    assert await tokens.verify(other.secret, NOW) is not None

    await tokens.revoke(issued.token_id, now=NOW)
    assert await tokens.verify(issued.secret, NOW) is None
    assert await tokens.verify(other.secret, NOW) is not None  # the others are kept


async def test_removing_an_account_stops_its_tokens_at_once(database: Database) -> None:
    await enabled_shop(database, "s1")
    tokens = CachedTokens(TokenStore(database), SECONDS, monotonic=Monotonic())
    accounts = AccountRepository(database, on_tokens_revoked=tokens.forget_account)
    issued = await tokens.issue(now=NOW, shop_id="s1", account_id="s1-sub1")
    assert await tokens.verify(issued.secret, NOW) is not None

    await accounts.remove_sub_account("s1", "s1-sub1", actor="s1-main", now=NOW)
    assert await tokens.verify(issued.secret, NOW) is None


async def test_an_expired_token_stops_at_its_expiry(database: Database) -> None:
    """The expiry is the token's own instant on the service's clock, not the kept time."""
    await enabled_shop(database, "s1")
    elsewhere = TokenStore(database)
    issued = await elsewhere.issue(now=NOW, shop_id="s1", account_id="s1-main",
                                   expires_at=NOW + timedelta(minutes=1))
    tokens = CachedTokens(elsewhere, SECONDS, monotonic=Monotonic())
    assert await tokens.verify(issued.secret, NOW + timedelta(seconds=59)) is not None
    assert await tokens.verify(issued.secret, NOW + timedelta(minutes=1)) is None


async def test_only_verified_tokens_of_existing_accounts_are_kept(database: Database) -> None:
    """A wrong secret for a kept token's id is refused; a main account's token issued before
    its shop was enabled is read again until the account (and its role) exists."""
    elsewhere = TokenStore(database)
    early = await elsewhere.issue(now=NOW, shop_id="s1", account_id="s1-main")
    tokens = CachedTokens(TokenStore(database), SECONDS, monotonic=Monotonic())
    first = await tokens.verify(early.secret, NOW)
    assert first is not None and first.role is None
    await enabled_shop(database, "s1", subs=False)
    later = await tokens.verify(early.secret, NOW)
    assert later is not None and later.role is AccountRole.MAIN

    forged = early.secret[:-4] + ("aaaa" if not early.secret.endswith("aaaa") else "bbbb")
    assert await tokens.verify(forged, NOW) is None
    assert await tokens.verify("pn_nonsense", NOW) is None


async def test_zero_seconds_keeps_nothing(database: Database) -> None:
    elsewhere = TokenStore(database)
    issued = await elsewhere.issue(now=NOW, admin=True)
    tokens = CachedTokens(TokenStore(database), 0, monotonic=Monotonic())
    who = await tokens.verify(issued.secret, NOW)
    assert who is not None and who.kind is PrincipalKind.PLATFORM
    await elsewhere.revoke(issued.token_id, now=NOW)
    assert await tokens.verify(issued.secret, NOW) is None
