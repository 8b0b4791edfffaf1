"""The metrics port: what the call path and the API count, and a sink that counts nothing for
the front doors without ``/metrics``.
"""

from __future__ import annotations

from typing import Protocol


class MetricsSink(Protocol):
    """What the call path and the API count (implemented over prometheus-client in ``api``;
    the AGI handler receives the same object through this Protocol). Synchronous, cheap."""

    def call_routed(self, outcome: str) -> None: ...

    def agi_latency(self, seconds: float) -> None: ...

    def allocation(self, result: str) -> None: ...

    def reveal(self, decision: str, rule: str) -> None: ...

    def pool(self, in_use: int, total: int) -> None: ...

    def recording(self, result: str) -> None:
        """A recording stored, discarded, failed (could not be encrypted) or purged."""
        ...


class NoMetrics:
    """A ``MetricsSink`` that counts nothing: for front doors without ``/metrics`` (the CLI)."""

    def call_routed(self, outcome: str) -> None:
        return None

    def agi_latency(self, seconds: float) -> None:
        return None

    def allocation(self, result: str) -> None:
        return None

    def reveal(self, decision: str, rule: str) -> None:
        return None

    def recording(self, result: str) -> None:
        return None

    def pool(self, in_use: int, total: int) -> None:
        return None
