"""Ports the call path uses for extension numbers (implemented in ``binding_store``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from routing.model import CallContext


class ExtensionNumbers(Protocol):
    async def lengths(self) -> Mapping[str, int]:
        """Every extension-mode X (E.164) -> its extension length."""
        ...


class ExtensionCallLookup(Protocol):
    async def find_extension_call(self, caller_e164: str, x_e164: str, extension: str | None,
                                  now: datetime) -> CallContext:
        """The caller's bindings (as A or as B) on extension number X: on ``extension`` only,
        or on every extension when ``None``; recently ended ones included, newest first."""
        ...
