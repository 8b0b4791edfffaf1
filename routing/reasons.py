"""Route outcomes: the single list of reason codes, their human texts and their prompts."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    BRIDGED = "bridged"
    NO_CALLER_ID = "no_caller_id"
    NOT_PRIVACY_NUMBER = "not_privacy_number"
    CALLER_NOT_AUTHORIZED = "caller_not_authorized"
    BINDING_EXPIRED = "binding_expired"
    SERVICE_DISABLED = "service_disabled"
    CALLER_DISABLED = "caller_disabled"
    DIRECTION_REFUSED = "direction_refused"
    QUIET_HOURS = "quiet_hours"
    CALLER_UNREPORTED = "caller_unreported"
    CAP_CALLER = "cap_caller"
    CAP_BUYER = "cap_buyer"
    CAP_NUMBER = "cap_number"
    ROUTING_ERROR = "routing_error"
    EXTENSION_INVALID = "extension_invalid"
    EXTENSION_TIMEOUT = "extension_timeout"

    @property
    def text(self) -> str:
        return _TEXTS[self]

    @property
    def prompt(self) -> str:
        """Asterisk sound file (without extension) played to the caller on reject."""
        return _PROMPTS[self]

    @property
    def hangup_cause(self) -> int:
        """Q.850 cause the dialplan hangs up with after the prompt."""
        return _CAUSES[self]


_TEXTS: dict[Reason, str] = {
    Reason.BRIDGED: "connected",
    Reason.NO_CALLER_ID: "caller number withheld or missing",
    Reason.NOT_PRIVACY_NUMBER: "dialled number is not a privacy number",
    Reason.CALLER_NOT_AUTHORIZED: "caller not authorized",
    Reason.BINDING_EXPIRED: "number expired",
    Reason.SERVICE_DISABLED: "privacy-number service disabled for the shop",
    Reason.CALLER_DISABLED: "caller number disabled",
    Reason.DIRECTION_REFUSED: "calls this way are not allowed for the shop",
    Reason.QUIET_HOURS: "outside the shop's permitted call hours",
    Reason.CALLER_UNREPORTED: "caller number not reported to the carrier",
    Reason.CAP_CALLER: "the caller number's call limit is reached",
    Reason.CAP_BUYER: "the buyer's call limit is reached",
    Reason.CAP_NUMBER: "the privacy number's call limit is reached",
    Reason.ROUTING_ERROR: "routing error",
    Reason.EXTENSION_INVALID: "wrong extension entered",
    Reason.EXTENSION_TIMEOUT: "no extension entered",
}

# Stock Asterisk core sounds, so a fresh install plays something meaningful.
_PROMPTS: dict[Reason, str] = {
    Reason.BRIDGED: "",
    Reason.NO_CALLER_ID: "privacy-unident",
    Reason.NOT_PRIVACY_NUMBER: "ss-noservice",
    Reason.CALLER_NOT_AUTHORIZED: "privacy-incorrect",
    Reason.BINDING_EXPIRED: "ss-noservice",
    Reason.SERVICE_DISABLED: "ss-noservice",
    Reason.CALLER_DISABLED: "privacy-incorrect",
    Reason.DIRECTION_REFUSED: "ss-noservice",
    Reason.QUIET_HOURS: "vm-nobodyavail",
    Reason.CALLER_UNREPORTED: "privacy-incorrect",
    Reason.CAP_CALLER: "all-circuits-busy-now",
    Reason.CAP_BUYER: "all-circuits-busy-now",
    Reason.CAP_NUMBER: "all-circuits-busy-now",
    Reason.ROUTING_ERROR: "all-circuits-busy-now",
    Reason.EXTENSION_INVALID: "pbx-invalid",
    Reason.EXTENSION_TIMEOUT: "vm-goodbye",
}

_CAUSES: dict[Reason, int] = {
    Reason.BRIDGED: 16,
    Reason.NO_CALLER_ID: 21,  # call rejected
    Reason.NOT_PRIVACY_NUMBER: 1,  # unallocated number
    Reason.CALLER_NOT_AUTHORIZED: 21,
    Reason.BINDING_EXPIRED: 22,  # number changed
    Reason.SERVICE_DISABLED: 21,
    Reason.CALLER_DISABLED: 21,
    Reason.DIRECTION_REFUSED: 21,
    Reason.QUIET_HOURS: 21,
    Reason.CALLER_UNREPORTED: 21,
    Reason.CAP_CALLER: 21,
    Reason.CAP_BUYER: 21,
    Reason.CAP_NUMBER: 21,
    Reason.ROUTING_ERROR: 38,  # network out of order
    Reason.EXTENSION_INVALID: 28,  # invalid number format (address incomplete)
    Reason.EXTENSION_TIMEOUT: 102,  # recovery on timer expiry
}
