"""Prometheus metrics on a per-app ``CollectorRegistry`` (never the global one).

``Metrics`` satisfies ``routing.metrics_ports.MetricsSink``: the composition root builds one and
hands it to the API and to the AGI handler, which count into it. Imports nothing of ours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST
_AGI_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_WEBHOOK_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
                        7200.0, 43200.0)
_CDR_LAG_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
                    21600.0)


class ListenerCounts(Protocol):
    stored: int
    reconciles: int
    reconciled: int
    bad_cdrs: int
    refused: int
    store_errors: int
    connects: int
    connect_failures: int


class ListenerView(Protocol):
    """What /metrics reads of the AMI listener at each scrape (``agi.ami_listener``)."""

    @property
    def is_connected(self) -> bool: ...

    @property
    def stats(self) -> ListenerCounts: ...


class _ListenerCollector(Collector):
    def __init__(self, listener: ListenerView) -> None:
        self.listener = listener

    def collect(self) -> Iterator[Metric]:
        stats = self.listener.stats
        yield GaugeMetricFamily("privnum_ami_connected",
                                "1 while the AMI listener is logged in to Asterisk, else 0.",
                                value=1.0 if self.listener.is_connected else 0.0)
        records = CounterMetricFamily(
            "privnum_cdr_records", "Call records stored from Asterisk, by path: ami (Cdr "
            "events) or reconcile (the safety-net CSV after a reconnect).", labels=["path"])
        records.add_metric(["ami"], stats.stored)
        records.add_metric(["reconcile"], stats.reconciled)
        yield records
        yield CounterMetricFamily("privnum_cdr_reconciles",
                                  "Reconcile runs (one after every AMI (re)connect).",
                                  value=stats.reconciles)
        problems = CounterMetricFamily(
            "privnum_cdr_problems", "Cdr events unreadable, records the call log refused, "
            "store outages retried.", labels=["kind"])
        problems.add_metric(["unreadable"], stats.bad_cdrs)
        problems.add_metric(["refused"], stats.refused)
        problems.add_metric(["store_unavailable"], stats.store_errors)
        yield problems
        connects = CounterMetricFamily("privnum_ami_connects", "AMI logins, by result.",
                                       labels=["result"])
        connects.add_metric(["ok"], stats.connects)
        connects.add_metric(["failed"], stats.connect_failures)
        yield connects


class LookupCounts(Protocol):
    """What /metrics reads of the call path's look-up (``binding_store.route_lookup``)."""

    index_hits: int
    sql_reads: int
    index_behind: int
    index_lost: int


class _LookupCollector(Collector):
    def __init__(self, stats: LookupCounts, switches: Callable[[], int]) -> None:
        self.stats = stats
        self.switches = switches

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        lookups = CounterMetricFamily(
            "privnum_route_lookups", "Call-path look-ups by where the answer came from: index "
            "(Redis alone, the fast path) or sql.", labels=["source"])
        lookups.add_metric(["index"], stats.index_hits)
        lookups.add_metric(["sql"], stats.sql_reads)
        yield lookups
        stale = CounterMetricFamily(
            "privnum_index_untrusted_lookups", "Look-ups that found the Redis index behind SQL "
            "or without a watermark (lost), and read SQL instead.", labels=["state"])
        stale.add_metric(["behind"], stats.index_behind)
        stale.add_metric(["lost"], stats.index_lost)
        yield stale
        yield CounterMetricFamily(
            "privnum_redis_master_switches", "Changes of the Redis master seen through the "
            "Sentinels (failovers) since start.", value=self.switches())


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.recordings = Counter(
            "privnum_recordings", "Recordings by result: stored, discarded (too short), "
            "failed (could not be encrypted: deleted), purged.", ["result"],
            registry=self.registry)
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
        self.http_seconds = Histogram(
            "privnum_http_request_duration_seconds",
            "API request time, first byte in to last byte out, by route template and method.",
            ["route", "method"], buckets=_HTTP_BUCKETS, registry=self.registry)
        self.cdr_lag_seconds = Histogram(
            "privnum_cdr_ingest_lag_seconds",
            "From a call's end (its CDR) to its record in the call log, over AMI.",
            buckets=_CDR_LAG_BUCKETS, registry=self.registry)
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
            "From an event's commit to its receiver's 2xx.", buckets=_WEBHOOK_LAG_BUCKETS,
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

    def watch_listener(self, listener: ListenerView) -> None:
        """Show the AMI listener's state and counts in /metrics (read at each scrape)."""
        self.registry.register(_ListenerCollector(listener))

    def watch_lookup(self, stats: LookupCounts, switches: Callable[[], int]) -> None:
        """Show where the call path's answers come from in /metrics (read at each scrape)."""
        self.registry.register(_LookupCollector(stats, switches))

    def cdr_lag(self, seconds: float) -> None:
        self.cdr_lag_seconds.observe(seconds)

    # MetricsSink -----------------------------------------------------------------------------

    def recording(self, result: str) -> None:
        self.recordings.labels(result).inc()

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

    def http_duration(self, route: str, method: str, seconds: float) -> None:
        self.http_seconds.labels(route=route, method=method).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
