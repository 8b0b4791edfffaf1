"""Asterisk edge: FastAGI protocol and server, AGI-script mode, the route handler, and the AMI
connection (CDR listener, reconcile from the safety-net CSV, click-to-call originate).

Handlers are ``async def handler(session: AgiSession) -> None`` and run unchanged in FastAGI and
AGI-script mode. ``agi.channel_vars`` is the one definition of the dialplan contract.

The names below load on first use: ``from agi import channel_vars`` (the dialplan contract,
which ``privnum asterisk render`` needs) must not import the server, the session and the
number parsing behind them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agi.errors import AgiCommandError, AgiError, AgiHangup, AgiProtocolError, AgiTimeout
    from agi.protocol import AgiEnvironment, AgiReply
    from agi.server import FastAgiServer, Handler, ServerStats
    from agi.session import AgiSession

_HOME = {
    "AgiCommandError": "agi.errors", "AgiError": "agi.errors", "AgiHangup": "agi.errors",
    "AgiProtocolError": "agi.errors", "AgiTimeout": "agi.errors",
    "AgiEnvironment": "agi.protocol", "AgiReply": "agi.protocol",
    "FastAgiServer": "agi.server", "Handler": "agi.server", "ServerStats": "agi.server",
    "AgiSession": "agi.session",
}

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


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'agi' has no attribute {name!r}")
    return getattr(import_module(home), name)
