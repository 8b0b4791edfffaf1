"""Domain errors. Decisions are values; these are for faults and refused requests.

Messages never carry a plaintext buyer number: callers pass masked numbers only.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime


class PrivnumError(Exception):
    """Base of every error privnum reports to a user; ``code`` is stable for APIs."""

    code = "privnum_error"


class InvalidNumber(PrivnumError):
    code = "invalid_number"


class NotMobileNumber(InvalidNumber):
    code = "not_mobile_number"


class StoreUnavailable(PrivnumError):
    """The database or Redis could not be reached; the one infrastructure error callers see."""

    code = "store_unavailable"


class NotFound(PrivnumError):
    code = "not_found"


class Conflict(PrivnumError):
    code = "conflict"


class PermissionDenied(PrivnumError):
    code = "permission_denied"


class ServiceNotEnabled(PrivnumError):
    code = "service_not_enabled"


class CallerNotApproved(PrivnumError):
    code = "caller_not_approved"


class ConfigurationError(PrivnumError):
    """Bad or missing configuration (e.g. encryption keys); reported as one clear line."""

    code = "configuration_error"


class PoolExhausted(PrivnumError):
    code = "pool_exhausted"

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

    code = "caller_cooling_down"

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
