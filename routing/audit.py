"""The audit log's vocabulary: every kind of event, and an event as read back.

One enum, so that the store, the use cases and anyone reading the log agree on the names.
Events are written by ``binding_store.audit.record`` only (in the transaction of the change
they describe), which masks buyer numbers in ``detail``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AuditKind(StrEnum):
    SHOP_ENABLED = "shop.enabled"
    SHOP_REENABLED = "shop.reenabled"
    SHOP_DISABLED = "shop.disabled"
    SHOP_LEVEL = "shop.level"
    SHOP_TIMEZONE = "shop.timezone"
    SHOP_CALL_RULES = "shop.call_rules"
    CALLER_REPORTING = "caller.reporting"
    ACCOUNT_ADDED = "account.added"
    ACCOUNT_REVIEWED = "account.reviewed"
    ACCOUNT_PHONE = "account.phone"
    ACCOUNT_REMOVED = "account.removed"
    ORDER_REGISTERED = "order.registered"
    CALLER_ADDED = "caller.added"
    CALLER_REMOVED = "caller.removed"
    CALLER_STATUS = "caller.status"
    POOL_IMPORTED = "pool.imported"
    POOL_STATE = "pool.state"
    POOL_QUARANTINED = "pool.quarantined"
    POOL_QUARANTINE_RELEASED = "pool.quarantine_released"
    KEYS_ROTATED = "keys.rotated"
    TOKEN_ISSUED = "api.token_issued"
    TOKEN_REVOKED = "api.token_revoked"
    BINDING_CREATED = "binding.create"
    BINDING_SWITCHED = "binding.switch"
    BINDING_RELEASED = "binding.release"
    REVEAL_PLAINTEXT = "reveal.plaintext"
    REVEAL_PRIVACY = "reveal.privacy"
    REVEAL_REFUSED = "reveal.refused"
    WEBHOOK_ADDED = "webhook.added"
    WEBHOOK_REMOVED = "webhook.removed"
    WEBHOOK_REPLAYED = "webhook.replayed"
    RECORDING_RETRIEVED = "recording.retrieved"


@dataclass(frozen=True)
class AuditRecord:
    """One stored event. ``kind`` is an ``AuditKind`` value (kept as stored, so that events
    written by another version still read)."""

    id: int
    at: datetime
    actor: str
    shop_id: str | None
    kind: str
    subject: str
    detail: dict[str, object]
