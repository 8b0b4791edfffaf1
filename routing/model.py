"""Domain values shared by the store, the call path and the API. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from routing.numbers import mask
from routing.reasons import Reason


class ServiceState(StrEnum):
    NOT_ENABLED = "not_enabled"
    ENABLED = "enabled"
    DISABLED = "disabled"


class AccountRole(StrEnum):
    MAIN = "main"
    SUB = "sub"


class CallerStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    DISABLED = "disabled"


class PoolState(StrEnum):
    AVAILABLE = "available"
    QUARANTINED = "quarantined"
    RETIRED = "retired"


class BindingState(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"
    EXPIRED = "expired"


class BindingLifetime:
    """What every shape of a binding answers the same way: is it active at ``now``?
    (Mixed into the dataclasses that declare ``state`` and ``expires_at``.)"""

    state: BindingState
    expires_at: datetime

    def is_active(self, now: datetime) -> bool:
        return self.state is BindingState.ACTIVE and now < self.expires_at


class Direction(StrEnum):
    MERCHANT = "merchant"  # caller A dials X, bridged to buyer B
    CALLBACK = "callback"  # buyer B dials X back, bridged to A


class Action(StrEnum):
    BRIDGE = "bridge"
    REJECT = "reject"


@dataclass(frozen=True)
class RouteBinding(BindingLifetime):
    """A binding as the call path sees it, with B decrypted in memory only.

    ``matched_as`` says which party the caller matched: ``MERCHANT`` when the caller is A,
    ``CALLBACK`` when the caller is B (matched by blind index). ``main_caller`` is the shop's
    main caller number (the main account's phone; empty if the store does not know it).
    """

    binding_id: str
    shop_id: str
    order_id: str
    caller_a: str
    virtual_x: str
    buyer_b: str = field(repr=False)
    expires_at: datetime
    state: BindingState
    matched_as: Direction
    shop_service: ServiceState
    caller_status: CallerStatus
    main_caller: str = ""
    extension: str = ""  # extension mode: the binding's extension on X

    def __repr__(self) -> str:
        return (
            f"RouteBinding(id={self.binding_id!r}, shop={self.shop_id!r}, A={self.caller_a!r}, "
            f"X={self.virtual_x!r}, B={mask(self.buyer_b)!r}, as={self.matched_as.value})"
        )


@dataclass(frozen=True)
class CallContext:
    """What the store knows about a call to X from a caller, gathered in one look-up.

    ``bindings`` holds every binding of X that matches the caller as A or as B and was
    active within the look-back window (expired and released ones included, newest first),
    so that a reject can say "expired" rather than "not authorized".
    """

    x_in_pool: bool
    bindings: tuple[RouteBinding, ...] = ()


@dataclass(frozen=True)
class CallRequest:
    """A call as Asterisk reported it (numbers already normalised; ``None`` if missing)."""

    caller: str | None
    dialed: str | None
    uniqueid: str
    linkedid: str
    channel: str = ""


@dataclass(frozen=True)
class RouteDecision:
    action: Action
    reason: Reason
    direction: Direction | None = None
    dial_number: str = field(default="", repr=False)
    present_number: str = ""
    max_seconds: int = 0
    binding_id: str = ""
    shop_id: str = ""
    order_id: str = ""
    virtual_x: str = ""
    mark: str = ""  # routing.call_rules.CallMark: how a call was let through (call log)
    warning_seconds: int = 0  # both parties hear the warning this long before max_seconds
    warning_repeat: int = 0  # seconds between repeats (0: once)
    record: bool = False  # routing.recording: recorded, the notice played to both first

    @property
    def prompt(self) -> str:
        return self.reason.prompt

    @classmethod
    def reject(cls, reason: Reason, virtual_x: str = "", binding: RouteBinding | None = None
               ) -> RouteDecision:
        if binding is None:
            return cls(action=Action.REJECT, reason=reason, virtual_x=virtual_x)
        return cls(
            action=Action.REJECT,
            reason=reason,
            direction=binding.matched_as,
            binding_id=binding.binding_id,
            shop_id=binding.shop_id,
            order_id=binding.order_id,
            virtual_x=binding.virtual_x,
        )


@dataclass(frozen=True)
class CallAttempt:
    """One routing decision as written to the call log (caller stored masked if a buyer)."""

    uniqueid: str
    linkedid: str
    at: datetime
    caller_masked: str
    caller_a: str
    virtual_x: str
    action: Action
    reason: Reason
    direction: Direction | None
    binding_id: str
    shop_id: str
    order_id: str
    system_name: str = ""
    mark: str = ""  # routing.call_rules.CallMark value
    extension: str | None = None  # extension mode: the extension entered; None otherwise
