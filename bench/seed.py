"""A realistic population for the routing and allocation benchmarks, bulk-inserted.

Shops (enabled), each with a main account and approved caller numbers A, a virtual-number pool
X, and active bindings (A, X, B) where every (A, X) and (B, X) pair is unique. Calls are a
mix of merchant calls (A dials X), buyer callbacks (B dials X) and strangers (an unknown
number dials a pool X, or any number dials a non-pool number).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text

from binding_store.all_models import Base
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.models import Account, Binding, CallerNumber, PoolNumber, Shop
from routing.numbers import mask

CALLERS_PER_SHOP = 5
CHUNK = 5_000


def pool_number(i: int) -> str:
    return f"+86170{i:08d}"


def caller_number(i: int) -> str:
    return f"+86138{i:08d}"


def buyer_number(i: int) -> str:
    return f"+86139{i:08d}"


def stranger_number(i: int) -> str:
    return f"+86137{i:08d}"


def not_pool_number(i: int) -> str:
    return f"+86186{i:08d}"


@dataclass
class Population:
    pool: list[str]
    callers: list[str]
    shops: list[str]
    caller_shop: dict[str, str]
    merchant_pairs: list[tuple[str, str]] = field(default_factory=list)  # (A, X)
    callback_pairs: list[tuple[str, str]] = field(default_factory=list)  # (B, X)


def plan(pool_size: int, n_bindings: int, n_shops: int | None = None) -> Population:
    """Which numbers and bindings exist (deterministic; no I/O)."""
    shops_n = n_shops or max(2, min(1_000, n_bindings // 100))
    callers_n = shops_n * CALLERS_PER_SHOP
    per_caller = -(-n_bindings // callers_n)
    if per_caller > pool_size:
        raise ValueError(f"{n_bindings} bindings need a pool of at least {per_caller} numbers")
    shops = [f"shop{i:05d}" for i in range(shops_n)]
    callers = [caller_number(i) for i in range(callers_n)]
    pop = Population(pool=[pool_number(i) for i in range(pool_size)], callers=callers,
                     shops=shops,
                     caller_shop={c: shops[i // CALLERS_PER_SHOP] for i, c in enumerate(callers)})
    for i in range(n_bindings):
        a_idx = i % callers_n
        # (A, X) unique: for a fixed A the slot i // callers_n differs; spread A's over the pool.
        x_idx = (i // callers_n + a_idx * 7) % pool_size
        pop.merchant_pairs.append((callers[a_idx], pop.pool[x_idx]))
        pop.callback_pairs.append((buyer_number(i), pop.pool[x_idx]))
    return pop


async def create_schema(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)


async def seed(db: Database, cipher: BuyerCipher, pop: Population, now: datetime) -> None:
    """Insert shops, accounts, callers, pool and active bindings (core bulk inserts)."""
    shops = [dict(id=s, name=s, level="L1", service_state="enabled", agreement_version="v1",
                  accepted_by="bench", accepted_at=now, created_at=now, updated_at=now)
             for s in pop.shops]
    accounts = [dict(id=f"acc-{s}", shop_id=s, role="main", name="main", phone=None,
                     phone_reviewed=True, created_at=now) for s in pop.shops]
    callers = [dict(shop_id=pop.caller_shop[c], number=c, account_id=f"acc-{pop.caller_shop[c]}",
                    status="approved", is_main=False, created_at=now, updated_at=now)
               for c in pop.callers]
    pool = [dict(number=x, region="", state="available", last_released_at=None, created_at=now)
            for x in pop.pool]
    expires = now + timedelta(days=1)
    bindings = []
    for i, ((a, x), (b, _)) in enumerate(zip(pop.merchant_pairs, pop.callback_pairs,
                                             strict=True)):
        bindings.append(dict(
            id=uuid.UUID(int=i + 1).hex, shop_id=pop.caller_shop[a], order_id=f"ord{i:09d}",
            buyer_id=f"buyer{i}", caller_a=a, virtual_x=x, buyer_cipher=cipher.encrypt(b),
            buyer_bidx=cipher.blind_index(b), buyer_masked=mask(b), created_at=now,
            expires_at=expires, released_at=None, state="active"))
    async with db.engine.begin() as conn:
        for model, rows in ((Shop, shops), (Account, accounts), (CallerNumber, callers),
                            (PoolNumber, pool), (Binding, bindings)):
            for start in range(0, len(rows), CHUNK):
                await conn.execute(insert(model), rows[start:start + CHUNK])
    if db.dialect == "postgresql":
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))


def call_mix(pop: Population, n: int, seed_value: int = 7) -> list[tuple[str, str, str]]:
    """``n`` calls as (kind, caller E.164, dialed E.164): 60 % merchant, 25 % callback,
    10 % stranger to a pool X, 5 % any number to a non-pool number."""
    rnd = random.Random(seed_value)
    calls: list[tuple[str, str, str]] = []
    for i in range(n):
        r = rnd.random()
        if r < 0.60 and pop.merchant_pairs:
            a, x = rnd.choice(pop.merchant_pairs)
            calls.append(("merchant", a, x))
        elif r < 0.85 and pop.callback_pairs:
            b, x = rnd.choice(pop.callback_pairs)
            calls.append(("callback", b, x))
        elif r < 0.95:
            calls.append(("stranger", stranger_number(i), rnd.choice(pop.pool)))
        else:
            calls.append(("not_pool", stranger_number(i), not_pool_number(i)))
    return calls


def national_digits(e164: str) -> str:
    """What a CN trunk puts in the caller ID / extension: the number without +86."""
    return e164[3:] if e164.startswith("+86") else e164


def now_utc() -> datetime:
    return datetime.now(UTC)


def expected_actions(kind: str) -> str:
    return "bridge" if kind in ("merchant", "callback") else "reject"

