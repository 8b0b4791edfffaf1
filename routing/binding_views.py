"""Bindings as the API and the CLI see them: plain values, no I/O, never a plaintext buyer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from routing.model import BindingState


@dataclass(frozen=True)
class BindingView:
    """One binding. ``state`` is the effective state at the time it was read: an active row
    whose expiry has passed is reported as ``EXPIRED``."""

    binding_id: str
    shop_id: str
    order_id: str
    buyer_id: str
    caller_a: str
    virtual_x: str
    buyer_masked: str
    created_at: datetime
    expires_at: datetime
    released_at: datetime | None
    state: BindingState

    def is_active(self, now: datetime) -> bool:
        return self.state is BindingState.ACTIVE and now < self.expires_at


@dataclass(frozen=True)
class IssuedBinding(BindingView):
    """The answer to an issue request: ``created`` is False when an active binding for the
    same shop and order already existed and was returned unchanged (idempotent repeat)."""

    created: bool = True


@dataclass(frozen=True)
class SwitchedBinding:
    """The answer to a caller switch. The switch closes the old binding (state ``released``)
    and opens ``binding`` for the new caller, with the same order, buyer and expiry, so that
    the old (A, X) pair's cool-down is on record. ``x_changed`` says whether X moved."""

    binding: BindingView
    previous: BindingView
    x_changed: bool
