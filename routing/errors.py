"""Every domain error privnum reports, in one place. Decisions are values; these are for faults
and refused requests.

Each error has a stable ``code`` (an :class:`ErrorCode`); the front doors map codes to their own
terms (HTTP status in ``api/problems.py``, exit codes in the CLI) and nowhere else. Messages never
carry a plaintext buyer number: callers pass masked numbers only.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar, Protocol


class ErrorCode(StrEnum):
    """The stable machine-readable codes (the API's problem ``code``)."""

    PRIVNUM_ERROR = "privnum_error"
    INVALID_NUMBER = "invalid_number"
    NOT_MOBILE_NUMBER = "not_mobile_number"
    INVALID_INPUT = "invalid_input"
    INVALID_BINDING_REQUEST = "invalid_binding_request"
    INVALID_CALL_LOG_QUERY = "invalid_call_log_query"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    CALLER_REFUSED = "caller_refused"
    BINDING_NOT_ACTIVE = "binding_not_active"
    SERVICE_NOT_ENABLED = "service_not_enabled"
    CALLER_NOT_APPROVED = "caller_not_approved"
    REVEAL_RATE_LIMITED = "reveal_rate_limited"
    POOL_EXHAUSTED = "pool_exhausted"
    CALLER_COOLING_DOWN = "caller_cooling_down"
    STORE_UNAVAILABLE = "store_unavailable"
    AMI_UNAVAILABLE = "ami_unavailable"
    CLICK_TO_CALL_UNAVAILABLE = "click_to_call_unavailable"
    CALL_LOG_UNAVAILABLE = "call_log_unavailable"
    CONFIGURATION_ERROR = "configuration_error"
    SCHEMA_DRIFT = "schema_drift"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"


class PrivnumError(Exception):
    """Base of every error privnum reports to a user."""

    code: ClassVar[ErrorCode] = ErrorCode.PRIVNUM_ERROR


# ---- malformed input ------------------------------------------------------------------------


class InvalidNumber(PrivnumError):
    code = ErrorCode.INVALID_NUMBER


class NotMobileNumber(InvalidNumber):
    code = ErrorCode.NOT_MOBILE_NUMBER


class InvalidInput(PrivnumError):
    """A request that is malformed on its face (bad id, unknown level, missing field)."""

    code = ErrorCode.INVALID_INPUT


class InvalidBindingRequest(PrivnumError):
    """A binding request the store refuses as malformed (e.g. a validity below 60 s)."""

    code = ErrorCode.INVALID_BINDING_REQUEST


class CallLogQueryError(PrivnumError):
    code = ErrorCode.INVALID_CALL_LOG_QUERY


class InvalidIdempotencyKey(PrivnumError):
    code = ErrorCode.INVALID_IDEMPOTENCY_KEY


class IdempotencyKeyReused(PrivnumError):
    """The key was used (by the same credential) for a different request."""

    code = ErrorCode.IDEMPOTENCY_KEY_REUSED


class IdempotencyKeyInUse(PrivnumError):
    """A request with this key is still running: try again shortly."""

    code = ErrorCode.IDEMPOTENCY_KEY_IN_USE
    retry_after_seconds = 1


# ---- who may do what --------------------------------------------------------------------------


class Unauthenticated(PrivnumError):
    """No credential, or one that is unknown, revoked or expired."""

    code = ErrorCode.UNAUTHENTICATED


class PermissionDenied(PrivnumError):
    code = ErrorCode.PERMISSION_DENIED


class NotFound(PrivnumError):
    code = ErrorCode.NOT_FOUND


# ---- refused by the rules ---------------------------------------------------------------------


class Conflict(PrivnumError):
    code = ErrorCode.CONFLICT


class Explained(Protocol):
    """A refusal reason with a human text (``routing.shop_views.BatchOutcome``)."""

    @property
    def text(self) -> str: ...


class CallerRefused(Conflict):
    """A single caller-number add refused for one of the batch reasons (``outcome``)."""

    code = ErrorCode.CALLER_REFUSED

    def __init__(self, outcome: Explained, number: str) -> None:
        super().__init__(f"caller number {number} refused: {outcome.text}")
        self.outcome = outcome
        self.number = number


class BindingNotActive(Conflict):
    """The binding was released or has expired: obtain a new privacy number."""

    code = ErrorCode.BINDING_NOT_ACTIVE


class ServiceNotEnabled(PrivnumError):
    code = ErrorCode.SERVICE_NOT_ENABLED


class CallerNotApproved(PrivnumError):
    code = ErrorCode.CALLER_NOT_APPROVED


class RevealRateLimited(PrivnumError):
    code = ErrorCode.REVEAL_RATE_LIMITED

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class PoolExhausted(PrivnumError):
    code = ErrorCode.POOL_EXHAUSTED

    def __init__(self, shop_id: str, caller_a: str, pool_size: int) -> None:
        super().__init__(
            f"no virtual number free for shop {shop_id} and caller {caller_a} "
            f"(pool size {pool_size}): add numbers with 'privnum pool import'"
        )
        self.shop_id = shop_id
        self.caller_a = caller_a
        self.pool_size = pool_size


class CallerCoolingDown(PoolExhausted):
    """No X is free for the caller only because every number it could get was released from
    it within the cool-down: waiting helps, importing numbers does not."""

    code = ErrorCode.CALLER_COOLING_DOWN

    def __init__(self, shop_id: str, caller_a: str, pool_size: int, free_at: datetime,
                 now: datetime) -> None:
        wait = max(1, math.ceil((free_at - now).total_seconds()))
        PrivnumError.__init__(
            self,
            f"no virtual number free for shop {shop_id} and caller {caller_a} yet: every "
            f"number it could get is in its cool-down after a recent release; the next one "
            f"is free at {free_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC "
            f"(in {_duration(wait)})",
        )
        self.shop_id = shop_id
        self.caller_a = caller_a
        self.pool_size = pool_size
        self.free_at = free_at
        self.retry_after_seconds = wait


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


# ---- infrastructure and configuration ---------------------------------------------------------


class StoreUnavailable(PrivnumError):
    """The database or Redis could not be reached; the one infrastructure error callers see."""

    code = ErrorCode.STORE_UNAVAILABLE


class RebuildInterrupted(StoreUnavailable):
    """Redis lost an index rebuild's token while it ran: flushed, restarted from a snapshot,
    or another rebuild (another process) took over."""


class AmiUnavailable(PrivnumError):
    """Not connected to Asterisk's manager interface (or it refused us)."""

    code = ErrorCode.AMI_UNAVAILABLE


class ClickToCallUnavailable(AmiUnavailable):
    """Click-to-call cannot ring A: AMI is off, down, or refused the Originate."""

    code = ErrorCode.CLICK_TO_CALL_UNAVAILABLE


class CallLogUnavailable(PrivnumError):
    """The call log is not configured on this server."""

    code = ErrorCode.CALL_LOG_UNAVAILABLE


class ConfigurationError(PrivnumError):
    """Bad or missing configuration (e.g. encryption keys); reported as one clear line."""

    code = ErrorCode.CONFIGURATION_ERROR


class SchemaDrift(PrivnumError):
    """The database schema at head differs from the models (a migration is missing)."""

    code = ErrorCode.SCHEMA_DRIFT


# ---- input files ------------------------------------------------------------------------------


class CdrFormatError(ValueError):
    """A CDR whose mandatory fields (uniqueid, start/end time) are missing or malformed.

    Raised by the CDR parser and handled where CDRs are read (one skipped row, counted); never
    shown to an API client, hence not a ``PrivnumError``.
    """
