"""Quarantine a virtual number / release it: the platform's (or the operator's) act only."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from routing.api_ports import Principal
from routing.quarantine import QuarantineView, check_reason
from routing.usecases.access import platform_only


class QuarantinePort(Protocol):
    async def quarantine(self, number: str, reason: str, *, actor: str, now: datetime
                         ) -> QuarantineView: ...

    async def release(self, number: str, *, actor: str, now: datetime) -> QuarantineView: ...


class Quarantine:
    def __init__(self, *, port: QuarantinePort) -> None:
        self._port = port

    async def quarantine(self, who: Principal, number: str, reason: str, now: datetime
                         ) -> QuarantineView:
        platform_only(who, "quarantine a virtual number")
        return await self._port.quarantine(number, check_reason(reason), actor=who.actor,
                                           now=now)

    async def release(self, who: Principal, number: str, now: datetime) -> QuarantineView:
        platform_only(who, "release a virtual number from quarantine")
        return await self._port.release(number, actor=who.actor, now=now)
