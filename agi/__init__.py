"""Asterisk edge: FastAGI protocol and server, AGI-script mode (and, later, the AMI listener).

Handlers are ``async def handler(session: AgiSession) -> None`` and run unchanged in both modes.
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
