"""The health check of the call-log read database (``database.read_url``, a replica)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from binding_store.db import Database
from routing.api_ports import HealthStatus
from routing.errors import StoreUnavailable


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
