"""The single definition of the channel variables privnum and the dialplan share.

The FastAGI handler answers with the ``PRIVNUM_*`` variables (:func:`agi.answer.answer_commands`:
the buyer-facing dial number with its own ``SET VARIABLE``, everything else in one
``EXEC MSet``); the dialplan in ``asterisk_conf/templates/extensions.conf`` reads them and
copies the routing facts into CDR custom fields (``pn_*``), which ``cdr_manager`` exports in AMI
``Cdr`` events under the header names in :data:`CDR_AMI_HEADERS` and ``cdr_custom`` writes to
the safety-net CSV in :data:`CDR_CSV_COLUMNS` order. A test checks the templates against this
module.
"""

from __future__ import annotations

from typing import Final

# ---- set by privnum (FastAGI), read by the dialplan
ACTION: Final = "PRIVNUM_ACTION"
"""``bridge`` or ``reject``; anything else (or unset) fails closed."""
ACTION_BRIDGE: Final = "bridge"
ACTION_REJECT: Final = "reject"
ACTION_COLLECT: Final = "collect"
"""Extension mode: ask the caller for the extension (:data:`EXT_PROMPT`, at most
:data:`EXT_LENGTH` digits, :data:`EXT_TIMEOUT` seconds per digit, ``#`` ends early), then ask
privnum again with what was entered (:data:`EXT_ENTERED`, :data:`EXT_TRY`)."""
ACTIONS: Final = (ACTION_BRIDGE, ACTION_REJECT, ACTION_COLLECT)

DIAL_NUMBER: Final = "PRIVNUM_DIAL_NUMBER"
"""Number to dial on the buyer/merchant trunk (digits, optional leading +). Never part of an
application's data (see :data:`OUTSIDE_MSET`) and only dialled on the second half of a Local
channel whose CDR is disabled, so no CDR, AMI event or CSV row carries it."""
CALLERID: Final = "PRIVNUM_CALLERID"
"""Number presented to the callee, and as connected line to the caller: always X."""
CDR_CALLERID: Final = "PRIVNUM_CDR_CALLERID"
"""The calling number as Asterisk records it from the decision on (CDR ``src``/``clid``,
``pn_caller``, so AMI ``Cdr`` events and the CSV): the shop's caller number A on merchant calls,
masked (``139****0001``) on every other call. The dialplan makes it the inbound channel's
caller ID right after the decision; the callee never sees it (it is shown X)."""
MAX_SECONDS: Final = "PRIVNUM_MAX_SECONDS"
"""Call-length limit in whole seconds (Dial ``L(...)``)."""
WARNING_SECONDS: Final = "PRIVNUM_WARNING_SECONDS"
"""Seconds before the limit both parties hear :data:`WARNING_SOUND` (Dial ``L(limit:warning:
repeat)``); ``0``: no warning."""
WARNING_REPEAT: Final = "PRIVNUM_WARNING_REPEAT"
"""Seconds between repeats of the warning; ``0``: once."""
WARNING_SOUND: Final = "PRIVNUM_WARNING_SOUND"
"""Sound file (no extension) of the warning (Asterisk ``LIMIT_WARNING_FILE``)."""
DIAL_LIMIT: Final = "PN_DIAL_LIMIT"
"""Dialplan-internal: the ``L()`` argument privnum-bridge builds from the three above."""
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
RECORD: Final = "PRIVNUM_RECORD"
"""``1``: the call is recorded. Before dialling, the caller hears :data:`NOTICE_SOUND` (early
media; a notice that does not play, ``PLAYBACKSTATUS`` other than ``SUCCESS``, takes the fail
path: the call is not bridged), then ``MixMonitor`` writes ``<recording dir>/<RECORD_ID>.wav``
and the callee hears the notice on answer (Dial ``U()``, which aborts the call if it cannot
play). Anything else: not recorded."""
RECORD_ID: Final = "PRIVNUM_RECORD_ID"
"""The recording's id (``rec_`` + 24 hex digits, ``routing.recording``): its file name and
the CDR's :data:`CDR_RECORDING`; any other shape takes the fail path."""
NOTICE_SOUND: Final = "PRIVNUM_NOTICE_SOUND"
"""Sound file (no extension) of the recording notice both parties hear."""
DIAL_NOTICE: Final = "PN_DIAL_NOTICE"
"""Dialplan-internal: the Dial ``U()`` option privnum-bridge adds for a recorded call."""
EXT: Final = "PRIVNUM_EXT"
"""Extension mode: the extension the decision is about (empty for AXB); copied to the CDR."""
EXT_LENGTH: Final = "PRIVNUM_EXT_LENGTH"
"""On ``collect``: how many digits to read (1-4)."""
EXT_PROMPT: Final = "PRIVNUM_EXT_PROMPT"
"""On ``collect``: sound file(s) asking for the extension (``&``-joined, no extension)."""
EXT_TIMEOUT: Final = "PRIVNUM_EXT_TIMEOUT"
"""On ``collect``: seconds to wait for the digits (1-99)."""

ALL: Final = (
    ACTION,
    DIAL_NUMBER,
    CALLERID,
    CDR_CALLERID,
    MAX_SECONDS,
    WARNING_SECONDS,
    WARNING_REPEAT,
    WARNING_SOUND,
    RECORD,
    RECORD_ID,
    NOTICE_SOUND,
    BINDING,
    SHOP,
    ORDER,
    X,
    DIRECTION,
    REASON,
    PROMPT,
    HANGUP_CAUSE,
    EXT,
    EXT_LENGTH,
    EXT_PROMPT,
    EXT_TIMEOUT,
)
"""Every channel variable privnum's routing answer may set, in a stable order (the dialplan
clears them all before asking the next FastAGI host)."""

INHERITED: Final = frozenset({DIAL_NUMBER, CALLERID})
"""Set with Asterisk's one-level inheritance prefix (``_PRIVNUM_DIAL_NUMBER``): the dialling
half of the Local channel ``privnum-bridge`` dials (context ``privnum-dial``) reads them."""
OUTSIDE_MSET: Final = frozenset({DIAL_NUMBER})
"""Set with AGI ``SET VARIABLE``, never inside ``EXEC MSet``: an application's arguments are
the channel's ``lastdata``, which a CDR keeps when the caller hangs up right after it."""


def wire_name(name: str) -> str:
    """The name privnum sets ``name`` under (with the inheritance prefix where needed)."""
    return f"_{name}" if name in INHERITED else name


# ---- set by the dialplan's extension collection, passed to privnum as AGI arguments 2 and 3
EXT_ENTERED: Final = "PRIVNUM_EXT_ENTERED"
"""The digits the caller entered (empty on a time-out)."""
EXT_TRY: Final = "PRIVNUM_EXT_TRY"
"""Which try this is (1, 2, ...; empty before the first prompt)."""
EXTENSION_INPUT: Final = (EXT_ENTERED, EXT_TRY)

# ---- set by privnum's click-to-call (AMI Originate), read by the dialplan
CLICK_CALLER: Final = "PRIVNUM_CLICK_CALLER"
"""The merchant's number A the Originate rang (its phone is shown X): context ``privnum-click``
makes it the caller ID, so the call is routed exactly as "A dials X"."""
CLICK_BINDING: Final = "PRIVNUM_CLICK_BINDING"
"""The binding the click-to-call was placed for (for tracing; the route decides anew)."""
CLICK_EXT: Final = "PRIVNUM_CLICK_EXT"
"""Extension mode: the binding's extension (1-4 digits), set only for an extension binding.
Context ``privnum-click`` then dials X through a Local channel into ``privnum-inbound`` with
Dial's ``D(ww<digits>)``: once privnum's prompt answers, the digits go as DTMF, exactly as a
phone dialling the dial string ``X,<digits>`` sends them after answer."""
CLICK: Final = (CLICK_CALLER, CLICK_BINDING, CLICK_EXT)

# ---- CDR custom fields (set by the dialplan with Set(CDR(name)=...))
CDR_BINDING: Final = "pn_binding"
CDR_SHOP: Final = "pn_shop"
CDR_ORDER: Final = "pn_order"
CDR_X: Final = "pn_x"
CDR_REASON: Final = "pn_reason"
CDR_DIRECTION: Final = "pn_direction"
CDR_CALLER: Final = "pn_caller"
"""The calling number as the CDR's ``src`` holds it: :data:`CDR_CALLERID` once privnum has
decided (A plain on merchant calls, masked otherwise); masked by the dialplan on the fail
path."""
CDR_EXT: Final = "pn_ext"
"""Extension mode: the extension entered (or dialled after X); empty for AXB calls."""
CDR_RECORDING: Final = "pn_recording"
"""The call's recording id (:data:`RECORD_ID`), set by privnum-bridge once the caller heard the
notice and MixMonitor started; empty for a call not recorded."""

CDR_FIELDS: Final = (
    CDR_BINDING,
    CDR_SHOP,
    CDR_ORDER,
    CDR_X,
    CDR_REASON,
    CDR_DIRECTION,
    CDR_CALLER,
    CDR_EXT,
    CDR_RECORDING,
)

CDR_FROM_CHANNEL: Final = {
    CDR_BINDING: BINDING,
    CDR_SHOP: SHOP,
    CDR_ORDER: ORDER,
    CDR_X: X,
    CDR_REASON: REASON,
    CDR_DIRECTION: DIRECTION,
    CDR_EXT: EXT,
}
"""CDR field -> channel variable it is copied from (pn_caller comes from CALLERID(num);
pn_recording is set by privnum-bridge only once the recording started)."""

CDR_AMI_HEADERS: Final = {
    CDR_BINDING: "PnBinding",
    CDR_SHOP: "PnShop",
    CDR_ORDER: "PnOrder",
    CDR_X: "PnX",
    CDR_REASON: "PnReason",
    CDR_DIRECTION: "PnDirection",
    CDR_CALLER: "PnCaller",
    CDR_EXT: "PnExt",
    CDR_RECORDING: "PnRecording",
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

CDR_CSV_LATER: Final = (CDR_EXT, CDR_RECORDING)
"""Columns appended to the CSV after its first release (in order, at the end): rows written
before end without them, and are read with those fields empty."""

CDR_CSV_EMPTY: Final = frozenset({"clid"})
"""CSV columns written empty. ``clid`` is the caller's presented name and number: the number is
``src`` already and the name is personal data privnum never uses (on a callback, the buyer's).
The column stays so files written before line up with the same reader."""

CDR_CSV_FILE: Final = "privnum-cdr.csv"
"""File name under ``<astlogdir>/cdr-custom/``."""
