"""Health probes for ``/healthz`` and the console: each dependency (a store, Redis, AMI)
reports its own status, and one this server is configured without is reported, not down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class HealthStatus:
    name: str
    ok: bool
    detail: str = ""
    required: bool = True


class HealthProbe(Protocol):
    name: str

    async def check(self) -> HealthStatus: ...


@dataclass
class DisabledProbe:
    """A dependency this server is configured without (no Redis, AMI off): reported, not down."""

    name: str
    detail: str

    async def check(self) -> HealthStatus:
        return HealthStatus(name=self.name, ok=True, detail=self.detail, required=False)
