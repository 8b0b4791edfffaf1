"""Prometheus metrics on a per-app ``CollectorRegistry`` (never the global one).

``Metrics`` satisfies ``routing.api_ports.MetricsSink``: the composition root builds one and
hands it to the API and to the AGI handler, which count into it. Imports nothing of ours.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
_AGI_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0,
                43200.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.calls = Counter("privnum_calls", "Routed calls by outcome (reason code).",
                             ["outcome"], registry=self.registry)
        self.agi_seconds = Histogram("privnum_agi_latency_seconds",
                                     "Time from AGI environment read to decision sent.",
                                     buckets=_AGI_BUCKETS, registry=self.registry)
        self.allocations = Counter("privnum_allocations",
                                   "Privacy-number allocations by result.",
                                   ["result"], registry=self.registry)
        self.pool_in_use = Gauge("privnum_pool_in_use", "Pool numbers in an active binding.",
                                 registry=self.registry)
        self.pool_total = Gauge("privnum_pool_total", "Pool numbers available or in use.",
                                registry=self.registry)
        self.pool_utilisation = Gauge("privnum_pool_utilisation_ratio",
                                      "Share of the pool in an active binding (0-1).",
                                      registry=self.registry)
        self.reveals = Counter("privnum_reveals", "Little-eye reveals by decision and rule.",
                               ["decision", "rule"], registry=self.registry)
        self.http = Counter("privnum_http_responses", "API responses by route and status.",
                            ["route", "status"], registry=self.registry)
        self.attempts_refused = Counter(
            "privnum_call_attempts_refused",
            "Call attempts the database refused (each logged, masked; the rest of the batch "
            "is written).", registry=self.registry)
        self.index_events = Counter(
            "privnum_index_events",
            "Redis hot index: found lost/behind/ahead of SQL, rebuilt, rebuild_failed.",
            ["event"], registry=self.registry)
        self.webhook_requests = Counter(
            "privnum_webhook_requests", "Webhook requests by result (delivered: 2xx; failed: "
            "anything else, retried on the ladder).", ["result"], registry=self.registry)
        self.webhook_events = Counter(
            "privnum_webhook_events", "Events in webhook requests by result.", ["result"],
            registry=self.registry)
        self.webhook_dead_letters = Counter(
            "privnum_webhook_dead_letters", "Deliveries dead-lettered after the last retry.",
            registry=self.registry)
        self.webhook_lag = Histogram(
            "privnum_webhook_delivery_lag_seconds",
            "From an event's commit to its receiver's 2xx.", buckets=_LAG_BUCKETS,
            registry=self.registry)
        self.webhook_backlog = Gauge(
            "privnum_webhook_backlog", "Webhook work waiting: events not yet handed to their "
            "subscriptions (undispatched), deliveries not yet delivered (pending).", ["stage"],
            registry=self.registry)
        self.webhook_oldest = Gauge(
            "privnum_webhook_oldest_pending_seconds",
            "Age of the oldest event still waiting for delivery (0: none).",
            registry=self.registry)
        self.webhook_dead_now = Gauge(
            "privnum_webhook_dead_letter_backlog",
            "Deliveries in the dead letters now (replay with 'privnum webhooks replay').",
            registry=self.registry)

    # MetricsSink -----------------------------------------------------------------------------

    def call_routed(self, outcome: str) -> None:
        self.calls.labels(outcome=outcome).inc()

    def agi_latency(self, seconds: float) -> None:
        self.agi_seconds.observe(seconds)

    def allocation(self, result: str) -> None:
        self.allocations.labels(result=result).inc()

    def reveal(self, decision: str, rule: str) -> None:
        self.reveals.labels(decision=decision, rule=rule).inc()

    def attempt_refused(self, count: int = 1) -> None:
        self.attempts_refused.inc(count)

    def pool(self, in_use: int, total: int) -> None:
        self.pool_in_use.set(in_use)
        self.pool_total.set(total)
        self.pool_utilisation.set(in_use / total if total else 0.0)

    def index_event(self, event: str) -> None:
        self.index_events.labels(event=event).inc()

    # webhooks (scripts.webhook_worker.WebhookObserver, and the backlog at scrape time) ------

    def webhook_request(self, result: str, events: int) -> None:
        self.webhook_requests.labels(result=result).inc()
        self.webhook_events.labels(result=result).inc(events)

    def webhook_delivered(self, lag_seconds: float) -> None:
        self.webhook_lag.observe(lag_seconds)

    def webhook_dead(self, count: int) -> None:
        self.webhook_dead_letters.inc(count)

    def webhook_backlog_now(self, undispatched: int, pending: int, oldest_seconds: float,
                            dead: int) -> None:
        self.webhook_backlog.labels(stage="undispatched").set(undispatched)
        self.webhook_backlog.labels(stage="pending").set(pending)
        self.webhook_oldest.set(oldest_seconds)
        self.webhook_dead_now.set(dead)

    # exposition ------------------------------------------------------------------------------

    def http_response(self, route: str, status: int) -> None:
        self.http.labels(route=route, status=str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
