"""What the app is built from: the use cases (``routing.usecases``), the health probes, the
metrics registry, a clock. No module-level state: ``scripts/container.py`` builds one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from api.console.options import ConsoleOptions
from api.metrics import Metrics
from routing.api_ports import AuditPort, CallLogReader
from routing.health_ports import HealthProbe
from routing.reveal_ports import RevealCounters
from routing.risk import RiskPolicy
from routing.usecases import UseCases


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ApiServices:
    use_cases: UseCases
    health: Sequence[HealthProbe] = ()
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], datetime] = utc_now
    max_body_bytes: int = 65_536
    body_timeout_seconds: float = 10.0  # for a request body to arrive in full (else 408)
    console: ConsoleOptions | None = None  # None: no web console

    # The use cases' settings and stores as the API's operators (and tests) adjust them.
    @property
    def policy(self) -> RiskPolicy:
        return self.use_cases.policy

    @policy.setter
    def policy(self, value: RiskPolicy) -> None:
        self.use_cases.policy = value

    @property
    def counters(self) -> RevealCounters:
        return self.use_cases.ports.counters

    @property
    def audit(self) -> AuditPort:
        return self.use_cases.ports.audit

    @property
    def call_log(self) -> CallLogReader | None:
        return self.use_cases.ports.call_log
