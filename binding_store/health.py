"""Health probes of the stores (``routing.api_ports.HealthProbe``) for ``/healthz``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from binding_store.db import Database
from binding_store.redis_index import RedisIndex
from routing.api_ports import HealthStatus
from routing.errors import StoreUnavailable


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
