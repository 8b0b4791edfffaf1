"""How bindings are issued (validity, cool-down, retries, batching, modes) and the issue
counters a store keeps for measurement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from routing.allocation import DEFAULT_BINDING_TTL
from routing.extensions import ModePolicy
from routing.numbers import DEFAULT_REGION


@dataclass(frozen=True)
class BindingPolicy:
    default_ttl: timedelta = DEFAULT_BINDING_TTL
    cooldown: timedelta = timedelta(hours=1)
    max_attempts: int = 40
    number_region: str = DEFAULT_REGION  # how numbers without a country code are read
    group_commit: bool = True  # PostgreSQL: batch concurrent issues into one statement
    max_batch: int = 32
    # Which pool mode(s) a new binding may take when the request names none.
    mode_policy: ModePolicy = ModePolicy.AXB_THEN_EXTENSION


@dataclass
class IssueStats:
    """Counters for measurement (per store instance): races lost and retried."""

    issued: int = 0
    repeated: int = 0
    retries: int = 0
