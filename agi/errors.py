"""Typed faults of the AGI layer.

Messages never carry command text, environment values or caller numbers: a command line may hold a
buyer number (``EXEC MSet PRIVNUM_B=...``), so errors name only the command verb.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agi.protocol import AgiReply


class AgiError(Exception):
    """Base of every AGI-layer fault."""


class AgiProtocolError(AgiError):
    """The peer sent something that is not AGI (malformed/oversized env or reply, garbage bytes).

    The connection is unusable afterwards and is closed.
    """


class AgiHangup(AgiError):
    """The channel is gone: Asterisk sent ``HANGUP``, answered ``511`` (dead channel), or closed.

    ``reply`` is the reply that arrived together with the hangup notice, if any (for example the
    ``200`` of a command that Asterisk still executed before the ``HANGUP`` line was read).
    """

    def __init__(self, message: str, reply: AgiReply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class AgiCommandError(AgiError):
    """Asterisk refused the command: ``510`` (unknown command) or ``520`` (bad syntax).

    A bug in our command text, never a caller action; ``usage`` holds the usage text of a
    multi-line ``520``.
    """

    def __init__(self, message: str, reply: AgiReply) -> None:
        super().__init__(message)
        self.reply = reply

    @property
    def code(self) -> int:
        return self.reply.code

    @property
    def usage(self) -> str:
        return "\n".join(self.reply.usage)


class AgiTimeout(AgiError):
    """No (complete) reply, or no environment, within the configured time.

    After a command timeout the session is out of step with Asterisk and refuses further commands.
    """
