"""What the app is built from: ports (Protocols from ``routing``), the risk policy, a clock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from api.metrics import Metrics
from routing.api_ports import (
    AccountPort,
    AuditPort,
    CallerPort,
    CallLogPort,
    CallOriginator,
    HealthProbe,
    PoolPort,
    RevealBindings,
    RevealCounters,
    ShopPort,
    TokenVerifier,
)
from routing.number_classes import DEFAULT_NUMBER_CLASSES, NumberClasses
from routing.risk import RiskPolicy


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ApiServices:
    tokens: TokenVerifier
    shops: ShopPort
    accounts: AccountPort
    callers: CallerPort
    bindings: RevealBindings
    pool: PoolPort
    counters: RevealCounters
    audit: AuditPort
    call_log: CallLogPort | None = None  # None → the call-log endpoints answer 503
    originator: CallOriginator | None = None  # None (AMI off) → click-to-call answers 503
    health: Sequence[HealthProbe] = ()
    policy: RiskPolicy = field(default_factory=RiskPolicy)
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], datetime] = utc_now
    default_region: str = "CN"
    number_classes: NumberClasses = DEFAULT_NUMBER_CLASSES  # how privacy numbers are read
    max_body_bytes: int = 65_536
    body_timeout_seconds: float = 10.0  # for a request body to arrive in full (else 408)
    click_to_call_ring_seconds: int = 30
    call_log_default_days: int = 1
    call_log_max_days: int = 30
