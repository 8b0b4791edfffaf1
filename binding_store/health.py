"""Health probes of the stores (``routing.health_ports.HealthProbe``) for ``/healthz``: the
database, the call-log read replica (``database.read_url``), Redis."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from binding_store.db import Database
from binding_store.redis_index import RedisIndex
from routing.errors import StoreUnavailable
from routing.health_ports import HealthStatus


@dataclass
class DatabaseProbe:
    db: Database
    name: str = "database"
    required: bool = True

    async def check(self) -> HealthStatus:
        async with self.db.session() as session:
            await session.execute(text("SELECT 1"))
        return HealthStatus(name=self.name, ok=True, detail=self.db.dialect)


@dataclass
class RedisProbe:
    index: RedisIndex
    name: str = "redis"
    required: bool = False  # look-ups fall back to SQL: degraded, not down

    async def check(self) -> HealthStatus:
        try:
            await self.index.ping()
        except StoreUnavailable as exc:
            return HealthStatus(name=self.name, ok=False, detail=str(exc),
                                required=self.required)
        return HealthStatus(name=self.name, ok=True, required=self.required)


@dataclass
class ReplicaProbe:
    """The call-log read replica (``database.read_url``): calls route without it, only the
    call-log endpoints wait. The detail says how far its replay is behind."""

    db: Database
    name: str = "database_read"
    required: bool = False

    async def check(self) -> HealthStatus:
        try:
            async with self.db.session() as session:
                lag = None if self.db.dialect != "postgresql" else (await session.execute(text(
                    "SELECT CASE WHEN pg_is_in_recovery() THEN COALESCE(EXTRACT(EPOCH FROM "
                    "now() - pg_last_xact_replay_timestamp()), 0) END"))).scalar()
        except StoreUnavailable as exc:  # degraded, not down: said here, not by the caller
            return HealthStatus(name=self.name, ok=False, detail=str(exc), required=False)
        detail = "not a standby" if lag is None else f"standby, replay lag {lag:.1f} s"
        return HealthStatus(name=self.name, ok=True, detail=detail, required=self.required)
