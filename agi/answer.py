"""How privnum's routing answer goes on the wire: which AGI commands set which variables.

Everything goes in one ``EXEC MSet`` except the variables of
:data:`agi.channel_vars.OUTSIDE_MSET` (the number dialled, a buyer's on merchant calls): each
of those is set first with its own ``SET VARIABLE``. ``EXEC`` runs an application, and Asterisk
records an application's arguments as the channel's ``lastdata``; a CDR keeps them when the
caller hangs up right after. ``SET VARIABLE`` runs no application. Names get their
inheritance prefix from :func:`agi.channel_vars.wire_name`.
"""

from __future__ import annotations

from collections.abc import Mapping

from agi import channel_vars as cv
from agi.protocol import build_command, check_variable_name, format_mset


def answer_commands(variables: Mapping[str, str]) -> list[str]:
    """The command lines that set ``variables`` (plain names -> values), in sending order.

    An empty value of an ``OUTSIDE_MSET`` variable is not sent at all: the dialplan cleared
    every variable before asking, and an unset dial number fails closed."""
    private = [build_command("SET VARIABLE", check_variable_name(cv.wire_name(name)), value)
               for name, value in variables.items() if name in cv.OUTSIDE_MSET and value]
    rest = {cv.wire_name(name): value for name, value in variables.items()
            if name not in cv.OUTSIDE_MSET}
    return [*private, format_mset(rest)] if rest else private
