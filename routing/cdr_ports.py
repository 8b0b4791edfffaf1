"""Ports between the AMI listener (``agi/``) and the call log (``binding_store/``).

Implemented by ``binding_store.call_log.CallLogStore``; wired in ``scripts/front_doors.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from routing.cdr import CdrEvent


class CdrSink(Protocol):
    """Where call records go. Idempotent on (system name, uniqueid)."""

    async def write_batch(self, events: Sequence[CdrEvent], source: str = "ami") -> int:
        """Store the call records among ``events`` (billable legs, forks merged); rows already
        stored are skipped. Returns how many rows were newly stored. Raises
        ``routing.errors.StoreUnavailable`` when the store cannot be reached."""
        ...

    async def close_orphans(self, now: datetime, grace_seconds: float) -> int:
        """Turn call attempts older than ``grace_seconds`` that still have no CDR into records
        (``source = "attempt"``). Returns how many were closed."""
        ...


class Originator(Protocol):
    """Click-to-call through AMI (implemented by ``agi.ami_listener.AmiListener``)."""

    async def originate(self, channel: str, *, context: str, exten: str, priority: int = 1,
                        caller_id: str = "", timeout_ms: int = 30_000,
                        variables: Mapping[str, str] | None = None) -> str:
        """Queue an ``Originate`` (always ``Async: true``); returns the ActionID. The outcome
        arrives later as an ``OriginateResponse`` event. Raises ``AmiUnavailable`` when not
        connected."""
        ...
