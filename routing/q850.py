"""Q.850 cause values in words (ITU-T Q.850 table 1, the causes Asterisk reports), so a call
log can say why a call ended without sending its reader to the standard."""

from __future__ import annotations

_CAUSES: dict[int, str] = {
    1: "unallocated (unassigned) number",
    2: "no route to specified transit network",
    3: "no route to destination",
    6: "channel unacceptable",
    16: "normal call clearing",
    17: "user busy",
    18: "no user responding",
    19: "no answer from user (user alerted)",
    20: "subscriber absent",
    21: "call rejected",
    22: "number changed",
    26: "non-selected user clearing",
    27: "destination out of order",
    28: "invalid number format (address incomplete)",
    29: "facility rejected",
    31: "normal, unspecified",
    34: "no circuit/channel available",
    38: "network out of order",
    41: "temporary failure",
    42: "switching equipment congestion",
    44: "requested circuit/channel not available",
    47: "resource unavailable, unspecified",
    50: "requested facility not subscribed",
    55: "incoming calls barred within CUG",
    57: "bearer capability not authorized",
    58: "bearer capability not presently available",
    63: "service or option not available, unspecified",
    65: "bearer capability not implemented",
    66: "channel type not implemented",
    69: "requested facility not implemented",
    79: "service or option not implemented, unspecified",
    81: "invalid call reference value",
    88: "incompatible destination",
    95: "invalid message, unspecified",
    96: "mandatory information element is missing",
    97: "message type non-existent or not implemented",
    100: "invalid information element contents",
    102: "recovery on timer expiry",
    111: "protocol error, unspecified",
    127: "interworking, unspecified",
}


def cause_text(cause: int | None) -> str:
    """``"17 user busy"``; ``""`` when no cause was recorded."""
    if cause is None:
        return ""
    words = _CAUSES.get(cause)
    return f"{cause} {words}" if words else f"{cause} (cause not in Q.850 table 1)"
