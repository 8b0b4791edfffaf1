"""Webhook subscriptions and deliveries as values, and the rules of delivery: which events a
subscription takes, when a failed delivery is tried again, how a request is signed.

Pure (stdlib only). The signature is HMAC-SHA256 over ``"<timestamp>.<body>"`` with the
subscription's secret, sent as ``Privnum-Signature: v1=<hex>`` beside ``Privnum-Timestamp``
(Unix seconds); a receiver recomputes it over the raw body and refuses a timestamp outside its
replay window (:func:`verify`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from routing.errors import InvalidInput
from routing.events import EventType

SIGNATURE_HEADER = "Privnum-Signature"
TIMESTAMP_HEADER = "Privnum-Timestamp"
SIGNATURE_SCHEME = "v1"
DEFAULT_LADDER_MINUTES = (1, 4, 9, 106, 203, 300)
DEFAULT_REPLAY_WINDOW = timedelta(minutes=5)
MAX_BATCH = 50
MAX_URL = 2000


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # every attempt of the ladder failed (dead letter; replay to try again)


# ---- subscriptions --------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    """Event types a subscription takes: exact types or ``prefix.*`` (``binding.*``), or
    everything (``*``)."""

    patterns: tuple[str, ...] = ("*",)

    @classmethod
    def parse(cls, text: str | Sequence[str]) -> EventFilter:
        items = text.split(",") if isinstance(text, str) else list(text)
        patterns = tuple(sorted({p.strip() for p in items if p.strip()}))
        if not patterns:
            return cls()
        known = {t.value for t in EventType}
        families = {t.split(".")[0] for t in known}
        for pattern in patterns:
            if pattern == "*" or pattern in known:
                continue
            if pattern.endswith(".*") and pattern[:-2] in families:
                continue
            raise InvalidInput(f"unknown event type {pattern!r} (known: "
                               f"{', '.join(sorted(known))}, a family such as binding.*, "
                               "or *)")
        return cls(("*",) if "*" in patterns else patterns)

    def matches(self, event_type: str) -> bool:
        for pattern in self.patterns:
            if pattern in ("*", event_type):
                return True
            if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
                return True
        return False

    def __str__(self) -> str:
        return ",".join(self.patterns)


def check_url(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; ``InvalidInput`` for anything else. Whether the host
    resolves is asked of a port (``routing.webhook_ports.HostResolver``)."""
    if len(url) > MAX_URL:
        raise InvalidInput(f"webhook URL longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"webhook URL is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("webhook URL must be http:// or https://")
    if not parts.hostname:
        raise InvalidInput("webhook URL has no host")
    if parts.username or parts.password:
        raise InvalidInput("webhook URL must not carry credentials (use the secret)")
    if parts.fragment:
        raise InvalidInput("webhook URL must not have a #fragment")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class Subscription:
    """A subscription as listed (the secret never: it is shown once, when created)."""

    id: str
    url: str
    events: EventFilter
    shop_id: str | None  # only this shop's events; None: every shop's and shop-less calls
    batch_size: int
    description: str
    created_at: datetime
    removed_at: datetime | None
    paused_until: datetime | None = None

    def takes(self, event_type: str, shop_id: str) -> bool:
        if self.removed_at is not None or not self.events.matches(event_type):
            return False
        return self.shop_id is None or self.shop_id == shop_id


@dataclass(frozen=True)
class NewSubscription:
    """A subscription just created: the only time its secret is shown."""

    subscription: Subscription
    secret: str


@dataclass(frozen=True)
class DeliveryView:
    """One event's delivery to one subscription."""

    id: int
    subscription_id: str
    event_id: str
    event_type: str
    stream: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class BacklogStats:
    """For ``/metrics``: events not yet handed to their subscriptions, deliveries waiting,
    the age of the oldest waiting one, dead letters."""

    undispatched: int
    pending: int
    oldest_pending_seconds: float
    dead: int


# ---- retries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryLadder:
    """Delays after the 1st, 2nd ... failed attempt; past the last, the delivery is dead."""

    steps: tuple[timedelta, ...] = tuple(timedelta(minutes=m) for m in DEFAULT_LADDER_MINUTES)

    @classmethod
    def of_minutes(cls, minutes: Sequence[float]) -> RetryLadder:
        if not minutes or any(m <= 0 for m in minutes):
            raise ValueError("a retry ladder needs at least one delay, each above 0")
        return cls(tuple(timedelta(minutes=m) for m in minutes))

    @property
    def max_attempts(self) -> int:
        return len(self.steps) + 1

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """After ``attempts`` failed attempts: when to try again, or None (dead letter)."""
        if attempts < 1 or attempts > len(self.steps):
            return None
        return now + self.steps[attempts - 1]


# ---- signatures -----------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: datetime,
           window: timedelta = DEFAULT_REPLAY_WINDOW) -> bool:
    """A receiver's check: the signature matches the raw body and the timestamp is within
    ``window`` of ``now`` (a replayed request is refused). ``headers`` is matched without
    regard to case. Several ``v1=`` values (comma-separated) are accepted, any one matching."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lower.get(TIMESTAMP_HEADER.lower(), ""))
    except ValueError:
        return False
    if abs(now.timestamp() - timestamp) > window.total_seconds():
        return False
    expected = signature(secret, timestamp, body)
    offered = [part.strip() for part in lower.get(SIGNATURE_HEADER.lower(), "").split(",")]
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)
