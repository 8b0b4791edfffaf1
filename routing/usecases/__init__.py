"""The use cases: what privnum does, once, for every front door.

Each use case is a small class over ports (``routing.api_ports``, ``routing.ports``) taking the
acting :class:`~routing.api_ports.Principal` and the time (``now``) and returning domain values
(``routing.*_views``); errors are ``routing.errors``. The HTTP routes (``api/``) and the CLI
commands (``scripts/cli_*``) only translate their input into these calls and the values back
into their output. This package imports ``routing`` only (``tests/test_architecture.py``); it is
asynchronous because ports are, but does no I/O of its own and starts no task.

:class:`UseCases` is the catalogue a front door holds: the ports and settings the composition
root (``scripts/container.py``) built, and one property per use case. Use cases are built on
access (a few attribute assignments), so a swapped port or policy takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from routing.api_ports import (
    AccountPort,
    AuditPort,
    CallerPort,
    CallLogReader,
    CallOriginator,
    OrderPort,
    PoolPort,
    ShopPort,
)
from routing.call_log_views import LinkTemplates
from routing.call_rules import CallRulesPort
from routing.console_views import ConsoleReader
from routing.idempotency import IdempotencyStore
from routing.metrics_ports import MetricsSink
from routing.number_classes import DEFAULT_NUMBER_CLASSES, NumberClasses
from routing.numbers import DEFAULT_REGION
from routing.recording import RecordingReader
from routing.reveal_ports import RevealBindings, RevealCounters, RevealFactsPort
from routing.risk import RiskPolicy
from routing.token_ports import TokenPort
from routing.usecases.bindings import Bindings
from routing.usecases.call_log import CallLog
from routing.usecases.call_rules import ShopCallRulesCases
from routing.usecases.callers import Callers
from routing.usecases.console import Console
from routing.usecases.credentials import Credentials
from routing.usecases.idempotency import DEFAULT_TTL, Idempotency
from routing.usecases.orders import Orders
from routing.usecases.pool import Pool
from routing.usecases.quarantine import Quarantine, QuarantinePort
from routing.usecases.recordings import Recordings
from routing.usecases.reveal import Reveal
from routing.usecases.shops import Shops
from routing.usecases.webhooks import Webhooks
from routing.webhook_ports import HostResolver, WebhookDeliveries, WebhookSubscriptions


class Ports(Protocol):
    """What the use cases read and write through (``binding_store`` implements the stores,
    ``agi`` click-to-call, ``api`` the metrics; ``scripts/container.py`` provides them, each
    built on first use)."""

    @property
    def shops(self) -> ShopPort: ...

    @property
    def accounts(self) -> AccountPort: ...

    @property
    def callers(self) -> CallerPort: ...

    @property
    def bindings(self) -> RevealBindings: ...

    @property
    def counters(self) -> RevealCounters: ...

    @property
    def audit(self) -> AuditPort: ...

    @property
    def tokens(self) -> TokenPort: ...

    @property
    def orders(self) -> OrderPort: ...

    @property
    def reveal_facts(self) -> RevealFactsPort: ...

    @property
    def pool(self) -> PoolPort: ...

    @property
    def call_log(self) -> CallLogReader | None:
        """``None``: the call-log use cases answer "unavailable"."""
        ...

    @property
    def console_reader(self) -> ConsoleReader | None:
        """``None``: the console's call detail, charts and chain check are unavailable."""
        ...

    @property
    def originator(self) -> CallOriginator | None:
        """``None`` (AMI off): click-to-call is unavailable."""
        ...

    @property
    def metrics(self) -> MetricsSink: ...

    @property
    def webhook_subscriptions(self) -> WebhookSubscriptions: ...

    @property
    def webhook_deliveries(self) -> WebhookDeliveries: ...

    @property
    def host_resolver(self) -> HostResolver: ...

    @property
    def idempotency_keys(self) -> IdempotencyStore: ...

    @property
    def call_rules(self) -> CallRulesPort: ...

    @property
    def quarantine(self) -> QuarantinePort: ...

    @property
    def recordings(self) -> RecordingReader: ...


@dataclass(kw_only=True)
class UseCases:
    ports: Ports
    policy: RiskPolicy = field(default_factory=RiskPolicy)
    links: LinkTemplates = field(default_factory=lambda: LinkTemplates(order="", chat=""))
    number_classes: NumberClasses = DEFAULT_NUMBER_CLASSES
    region: str = DEFAULT_REGION  # how numbers without a country code are read
    ring_seconds: int = 30  # how long click-to-call rings A
    idempotency_ttl: timedelta = DEFAULT_TTL  # how long a kept response is replayed
    cooldown: timedelta = timedelta(hours=1)  # a released number's rest from its caller

    @property
    def reveal(self) -> Reveal:
        p = self.ports
        return Reveal(facts=p.reveal_facts, bindings=p.bindings,
                      counters=p.counters, audit=p.audit, metrics=p.metrics,
                      policy=self.policy, region=self.region, call_rules=p.call_rules)

    @property
    def orders(self) -> Orders:
        return Orders(orders=self.ports.orders, shops=self.ports.shops, region=self.region)

    @property
    def bindings(self) -> Bindings:
        p = self.ports
        return Bindings(bindings=p.bindings, callers=p.callers, originator=p.originator,
                        ring_seconds=self.ring_seconds)

    @property
    def shops(self) -> Shops:
        return Shops(shops=self.ports.shops, accounts=self.ports.accounts,
                     callers=self.ports.callers,
                     default_timezone=self.policy.timezone, region=self.region)

    @property
    def callers(self) -> Callers:
        return Callers(shops=self.ports.shops, callers=self.ports.callers)

    @property
    def call_log(self) -> CallLog:
        return CallLog(reader=self.ports.call_log, links=self.links, shops=self.ports.shops,
                       recordings=self.ports.recordings)

    @property
    def recordings(self) -> Recordings:
        return Recordings(reader=self.ports.recordings, audit=self.ports.audit)

    @property
    def console(self) -> Console:
        return Console(reader=self.ports.console_reader, links=self.links,
                       cooldown=self.cooldown)

    @property
    def call_rules(self) -> ShopCallRulesCases:
        return ShopCallRulesCases(rules=self.ports.call_rules, region=self.region)

    @property
    def quarantine(self) -> Quarantine:
        return Quarantine(port=self.ports.quarantine)

    @property
    def pool(self) -> Pool:
        return Pool(pool=self.ports.pool, classes=self.number_classes)

    @property
    def credentials(self) -> Credentials:
        return Credentials(tokens=self.ports.tokens, accounts=self.ports.accounts,
                           shops=self.ports.shops)

    @property
    def webhooks(self) -> Webhooks:
        p = self.ports
        return Webhooks(subscriptions=p.webhook_subscriptions, deliveries=p.webhook_deliveries,
                        resolver=p.host_resolver, shops=p.shops)

    @property
    def idempotency(self) -> Idempotency:
        return Idempotency(store=self.ports.idempotency_keys, ttl=self.idempotency_ttl)
