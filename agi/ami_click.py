"""Click-to-call over AMI, and the AMI connection's health for ``/healthz``.

:class:`AmiClickToCall` implements ``routing.api_ports.CallOriginator`` over an
``Originator`` (the AMI listener, or an originate-only connection of the API's own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from agi import channel_vars as cv
from agi.ami_listener import AmiListener, AmiListenerConfig
from routing.cdr import CdrEvent
from routing.cdr_ports import Originator
from routing.errors import AmiUnavailable, ClickToCallUnavailable
from routing.health_ports import HealthStatus
from routing.numbers import national

CLICK_CONTEXT = "privnum-click"


class AmiClickToCall:
    """Ring A (``Originate``, always ``Async: true``) on the channel the dialplan uses to
    reach numbers (``dial_template``) showing X (the Originate's caller ID is what A's phone
    displays); when A answers, context ``privnum-click`` makes A the caller ID and the call
    enters ``privnum-inbound`` at exten X as "A dials X": routed (the AGI decides A → X → B, B
    is shown X) and logged like any call. An Originate that cannot be placed is
    ``ClickToCallUnavailable`` (AMI down means click-to-call down, not the call path)."""

    def __init__(self, originator: Originator, *, dial_template: str, national_format: bool,
                 context: str = CLICK_CONTEXT) -> None:
        self._originator = originator
        self._template = dial_template
        self._national = national_format
        self._context = context

    async def click_to_call(self, *, caller_a: str, virtual_x: str, binding_id: str,
                            timeout_seconds: int, extension: str = "") -> str:
        """For an extension binding the extension travels in :data:`cv.CLICK_EXT`: the
        dialplan sends it as DTMF once privnum's prompt for it answers (A, who answered
        privnum's own call, never types it); A's phone shows X alone."""
        dial_a = national(caller_a) if self._national else caller_a
        exten = national(virtual_x) if self._national else virtual_x
        variables = {cv.CLICK_CALLER: dial_a, cv.CLICK_BINDING: binding_id}
        if extension:
            variables[cv.CLICK_EXT] = extension
        try:
            return await self._originator.originate(
                self._template.format(number=dial_a), context=self._context,
                exten=exten, caller_id=f'"{exten}" <{exten}>',
                timeout_ms=timeout_seconds * 1000, variables=variables)
        except AmiUnavailable as exc:
            raise ClickToCallUnavailable(f"click-to-call unavailable: {exc}") from exc


class _NoCdrs:
    """The originate-only connection subscribes to no CDR events, so this never fills."""

    async def write_batch(self, events: Sequence[CdrEvent], source: str = "ami") -> int:
        return 0

    async def close_orphans(self, now: datetime, grace_seconds: float) -> int:
        return 0


def originate_only(config: AmiListenerConfig) -> AmiListener:
    """An AMI connection for click-to-call alone (``privnum api`` without ``privnum serve``):
    system events only (the login waits for FullyBooted); CDRs stay with the listener. It
    reconnects and pings like the listener."""
    return AmiListener(replace(config, events="system"), _NoCdrs())


@dataclass
class AmiProbe:
    listener: AmiListener
    name: str = "ami"
    required: bool = False  # calls still route without AMI; only CDRs and click-to-call wait

    async def check(self) -> HealthStatus:
        ok = self.listener.connected.is_set()
        return HealthStatus(name=self.name, ok=ok, required=self.required,
                            detail="connected" if ok else "not connected")
