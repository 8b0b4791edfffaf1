"""The single definition of the channel variables privnum and the dialplan share.

The FastAGI handler sets the ``PRIVNUM_*`` variables (one ``EXEC MSet``); the dialplan in
``asterisk_conf/templates/extensions.conf`` reads them and copies the routing facts into CDR
custom fields (``pn_*``), which ``cdr_manager`` exports in AMI ``Cdr`` events under the header
names in :data:`CDR_AMI_HEADERS` and ``cdr_custom`` writes to the safety-net CSV in
:data:`CDR_CSV_COLUMNS` order. A test checks the templates against this module.
"""

from __future__ import annotations

from typing import Final

# ---- set by privnum (FastAGI), read by the dialplan
ACTION: Final = "PRIVNUM_ACTION"
"""``bridge`` or ``reject``; anything else (or unset) fails closed."""
ACTION_BRIDGE: Final = "bridge"
ACTION_REJECT: Final = "reject"
ACTIONS: Final = (ACTION_BRIDGE, ACTION_REJECT)

DIAL_NUMBER: Final = "PRIVNUM_DIAL_NUMBER"
"""Number to dial on the buyer/merchant trunk (digits, optional leading +)."""
CALLERID: Final = "PRIVNUM_CALLERID"
"""Number presented to the callee, and as connected line to the caller: always X."""
MAX_SECONDS: Final = "PRIVNUM_MAX_SECONDS"
"""Call-length limit in whole seconds (Dial ``L(...)``)."""
BINDING: Final = "PRIVNUM_BINDING"
SHOP: Final = "PRIVNUM_SHOP"
ORDER: Final = "PRIVNUM_ORDER"
X: Final = "PRIVNUM_X"
DIRECTION: Final = "PRIVNUM_DIRECTION"
"""``merchant`` (A calls X, reaches B) or ``callback`` (B calls X, reaches A)."""
DIRECTION_MERCHANT: Final = "merchant"
DIRECTION_CALLBACK: Final = "callback"
DIRECTIONS: Final = (DIRECTION_MERCHANT, DIRECTION_CALLBACK)
REASON: Final = "PRIVNUM_REASON"
"""Reason code (``routing.reasons.Reason`` value)."""
PROMPT: Final = "PRIVNUM_PROMPT"
"""Sound file (no extension) played on reject."""
HANGUP_CAUSE: Final = "PRIVNUM_HANGUP_CAUSE"
"""Q.850 cause (1-127) the reject branch hangs up with; empty on bridge."""

ALL: Final = (
    ACTION,
    DIAL_NUMBER,
    CALLERID,
    MAX_SECONDS,
    BINDING,
    SHOP,
    ORDER,
    X,
    DIRECTION,
    REASON,
    PROMPT,
    HANGUP_CAUSE,
)
"""Every channel variable privnum may set, in a stable order."""

# ---- CDR custom fields (set by the dialplan with Set(CDR(name)=...))
CDR_BINDING: Final = "pn_binding"
CDR_SHOP: Final = "pn_shop"
CDR_ORDER: Final = "pn_order"
CDR_X: Final = "pn_x"
CDR_REASON: Final = "pn_reason"
CDR_DIRECTION: Final = "pn_direction"
CDR_CALLER: Final = "pn_caller"
"""The true calling number as received (Asterisk's CDR ``src`` keeps it too)."""

CDR_FIELDS: Final = (
    CDR_BINDING,
    CDR_SHOP,
    CDR_ORDER,
    CDR_X,
    CDR_REASON,
    CDR_DIRECTION,
    CDR_CALLER,
)

CDR_FROM_CHANNEL: Final = {
    CDR_BINDING: BINDING,
    CDR_SHOP: SHOP,
    CDR_ORDER: ORDER,
    CDR_X: X,
    CDR_REASON: REASON,
    CDR_DIRECTION: DIRECTION,
}
"""CDR field -> channel variable it is copied from (pn_caller comes from CALLERID(num))."""

CDR_AMI_HEADERS: Final = {
    CDR_BINDING: "PnBinding",
    CDR_SHOP: "PnShop",
    CDR_ORDER: "PnOrder",
    CDR_X: "PnX",
    CDR_REASON: "PnReason",
    CDR_DIRECTION: "PnDirection",
    CDR_CALLER: "PnCaller",
    "linkedid": "LinkedID",
    "sequence": "Sequence",
    "peeraccount": "PeerAccount",
}
"""cdr_manager ``[mappings]``: CDR variable -> header name in the AMI ``Cdr`` event."""

CDR_CSV_COLUMNS: Final = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "linkedid",
    "sequence",
    *CDR_FIELDS,
)
"""Column order of the safety-net CSV (``cdr_custom``), one CDR per line, all fields quoted."""

CDR_CSV_FILE: Final = "privnum-cdr.csv"
"""File name under ``<astlogdir>/cdr-custom/``."""
