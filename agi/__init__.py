"""Asterisk edge: FastAGI protocol and server, AGI-script mode, the route handler, and the AMI
connection (CDR listener, reconcile from the safety-net CSV, click-to-call originate).

Handlers are ``async def handler(session: AgiSession) -> None`` and run unchanged in FastAGI and
AGI-script mode. ``agi.channel_vars`` is the one definition of the dialplan contract.
"""

from __future__ import annotations

from agi.errors import AgiCommandError, AgiError, AgiHangup, AgiProtocolError, AgiTimeout
from agi.protocol import AgiEnvironment, AgiReply
from agi.server import FastAgiServer, Handler, ServerStats
from agi.session import AgiSession

__all__ = [
    "AgiCommandError",
    "AgiEnvironment",
    "AgiError",
    "AgiHangup",
    "AgiProtocolError",
    "AgiReply",
    "AgiSession",
    "AgiTimeout",
    "FastAgiServer",
    "Handler",
    "ServerStats",
]
