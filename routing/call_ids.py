"""Ids Asterisk hands us (``agi_uniqueid``, the linkedid argument, CDR ``uniqueid``/``linkedid``):
which ones may be stored and logged as they are.

Asterisk writes a channel's uniqueid as ``[systemname-]<epoch>.<sequence>``; an originator may
assign its own (AMI ``Originate ChannelId``, ARI), which in practice are UUIDs, and Local
channels add ``-2`` to the second half's. Anything else, or anything longer than the call log's
columns, is not an id we keep: an assigned id or a mis-written dialplan argument can be any
text, a caller's phone number included. Pure: the caller decides what replaces a refused id.
"""

from __future__ import annotations

import re
from collections.abc import Collection

MAX_CALL_ID = 64
"""Width of the ``uniqueid``/``linkedid`` columns."""

_CHARSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*", re.ASCII)
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?:-[0-9]{1,3})?",
    re.ASCII)
# ``<epoch>.<sequence>`` at the end, after the start or the system name's "-" (ten digits of
# seconds cover 2001-2286), maybe with a Local channel half's suffix.
_ASTERISK_TAIL = re.compile(r"(?:^|(?<=-))[0-9]{10}\.[0-9]{1,10}(?:-[0-9]{1,3})?$", re.ASCII)
# A run this long outside the epoch is a phone number as far as we are concerned.
_NUMBER_RUN = re.compile(r"[0-9]{7,}", re.ASCII)
_MIN_NUMBER_DIGITS = 7
_NOT_DIGIT = re.compile(r"[^0-9]")


def is_call_id(value: str, *, numbers: Collection[str] = ()) -> bool:
    """True when ``value`` may be stored and logged verbatim.

    ``numbers`` are the phone numbers of the call at hand, in every form worth checking (as
    received, E.164, national): an id holding one of them is refused even in a valid shape.
    """
    if len(value) > MAX_CALL_ID or _CHARSET.fullmatch(value) is None:
        return False
    if _UUID.fullmatch(value) is None:
        rest = _ASTERISK_TAIL.sub("", value)
        if _NUMBER_RUN.search(rest) is not None:
            return False
    if not numbers:
        return True
    # Across separators too: "1390000010.0100" is 13900000100 written as an Asterisk id.
    digits = _digits(value)
    return not any(len(form) >= _MIN_NUMBER_DIGITS and form in digits
                   for form in map(_digits, numbers))


def _digits(text: str) -> str:
    return _NOT_DIGIT.sub("", text)


def number_forms(raw: str) -> tuple[str, ...]:
    """The forms a phone number given as ``raw`` (as Asterisk received it) may take inside an
    id: its digits, and, when written internationally (``+`` or ``00``), the national part
    after a one to three digit country code, and without a national trunk ``0``."""
    text = raw.strip()
    digits = _digits(text)
    forms = [digits]
    international = ""
    if text.startswith("+"):
        international = digits
    elif digits.startswith("00"):
        international = digits[2:]
    for cut in (1, 2, 3):
        if len(international) - cut >= _MIN_NUMBER_DIGITS:
            forms.append(international[cut:])
    if digits.startswith("0") and not digits.startswith("00"):
        forms.append(digits[1:])
    return tuple(f for f in forms if len(f) >= _MIN_NUMBER_DIGITS)
