"""Build the routing handler for a benchmark server or per-call script from ``Settings``.

The privnum variants use exactly what ships: ``scripts.call_path.route_stack(settings)``
(Database, buyer cipher, optional Redis index, ``StoreRouteLookup`` for look-ups and the
batching ``AttemptWriter`` for call attempts, ``RouteHandler``). Only the protocol floor is
ours: the same answer on the wire (``agi.answer.answer_commands``: the dial number's
``SET VARIABLE``, then one ``EXEC MSet``) with no look-up.
"""

from __future__ import annotations

from agi import channel_vars as cv
from agi.answer import answer_commands
from agi.session import AgiSession

# The variables a bridged call gets, with values of realistic length: the protocol floor
# sends exactly these, the way privnum does.
FLOOR_VARIABLES = {
    cv.ACTION: cv.ACTION_BRIDGE, cv.DIAL_NUMBER: "13900001234", cv.CALLERID: "17000001234",
    cv.CDR_CALLERID: "13800001234", cv.MAX_SECONDS: "3600",
    cv.BINDING: "0123456789abcdef0123456789abcdef",
    cv.SHOP: "shop00001", cv.ORDER: "ord000001234", cv.X: "+8617000001234",
    cv.DIRECTION: "merchant", cv.REASON: "bridged", cv.PROMPT: "",
}


class FloorHandler:
    """The protocol floor: the same commands with the same variables, no look-up, no
    decision, no recording."""

    async def __call__(self, session: AgiSession) -> None:
        for line in answer_commands(FLOOR_VARIABLES):
            await session.command(line)
