"""A binding as the store, the use cases, the API and the CLI see it: one plain value, no I/O,
never a plaintext buyer.

A binding has three shapes in all: the SQL row (``binding_store.models.Binding``, which makes
this view with ``row.view(now)``), the Redis index entry (``binding_store.redis_index``), and
this view. The call path's ``routing.model.RouteBinding`` is not a fourth: it is one call matched
against a binding, holding the decrypted B in memory for the dial string.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from routing.model import BindingLifetime, BindingState


@dataclass(frozen=True)
class BindingView(BindingLifetime):
    """One binding. ``state`` is the effective state at the time it was read: an active row
    whose expiry has passed is reported as ``EXPIRED``. ``created`` is True only on the answer
    to the issue request that created it (False: an active binding for the same shop and order
    already existed and was returned unchanged, an idempotent repeat)."""

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
    created: bool = False
    extension: str = ""  # '' for an AXB binding; else the digits to dial after X


@dataclass(frozen=True)
class SwitchedBinding:
    """The answer to a caller switch. The switch closes the old binding (state ``released``)
    and opens ``binding`` for the new caller, with the same order, buyer and expiry, so that
    the old (A, X) pair's cool-down is on record. ``x_changed`` says whether X moved."""

    binding: BindingView
    previous: BindingView
    x_changed: bool
