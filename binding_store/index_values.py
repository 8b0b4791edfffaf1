"""What the Redis hot index's keys hold (see ``binding_store.redis_index`` for the keys): a
binding entry (never a plaintext buyer number), a shop's state with its main caller number,
a caller number's status; states carry the watermark they are true at. Plain values, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from binding_store import json_text
from binding_store.models import Binding

REMOVED = "removed"


@dataclass(frozen=True)
class IndexEntry:
    binding_id: str
    shop_id: str
    order_id: str
    caller_a: str
    virtual_x: str
    buyer_bidx: str
    buyer_cipher: bytes
    expires_at: datetime
    # Set by the index itself when the binding ends: ``held`` while the change is being
    # committed (unknown: SQL answers), ``ended`` once it is (a marker: the reject says why).
    held: bool = False
    ended: bool = False

    @classmethod
    def of(cls, row: Binding) -> IndexEntry:
        return cls(row.id, row.shop_id, row.order_id, row.caller_a, row.virtual_x,
                   row.buyer_bidx, bytes(row.buyer_cipher), row.expires_at)

    def dumps(self, *, ended: bool = False) -> str:
        marker = {"end": 1} if ended else {}
        return json_text.dumps({**marker,
            "id": self.binding_id, "shop": self.shop_id, "order": self.order_id,
            "a": self.caller_a, "x": self.virtual_x, "bidx": self.buyer_bidx,
            "b": base64.b64encode(self.buyer_cipher).decode("ascii"),
            "exp": ms(self.expires_at),
        })

    @classmethod
    def loads(cls, raw: bytes | str) -> IndexEntry:
        d = json_text.loads(raw)
        return cls(d["id"], d["shop"], d["order"], d["a"], d["x"], d["bidx"],
                   binascii.a2b_base64(d["b"]), datetime.fromtimestamp(d["exp"] / 1000, UTC),
                   held=bool(d.get("held")), ended=bool(d.get("end")))

    def ended_at(self, now: datetime) -> bool:
        """Released, or past its validity: a marker, not a binding that routes."""
        return self.ended or now >= self.expires_at


@dataclass(frozen=True)
class ShopState:
    """A shop as the call path needs it: its service state and its main caller number (where
    a buyer's callback goes when the binding's own caller number can no longer take it)."""

    service: str
    main_caller: str = ""


@dataclass(frozen=True)
class IndexedPair:
    """What the index holds for a call: each binding with its shop state and caller status
    (``None`` where the index does not know), and the watermark the index reflects (``None``:
    the index has none, it was never built or has lost its data)."""

    ax: IndexEntry | None
    ax_shop: ShopState | None
    ax_caller: str | None
    bx: IndexEntry | None
    bx_shop: ShopState | None
    bx_caller: str | None
    watermark: int | None
    in_pool: bool = False


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def lifetime_ms(until: datetime, now: datetime) -> int:
    """How long a key must live, measured on the caller's clock (Redis's may disagree)."""
    return max(1, ms(until) - ms(now))


def text_of(value: Any) -> str | None:
    if value is None or value is False:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def entry_of(raw: Any) -> IndexEntry | None:
    """A binding key's value; anything unreadable is a miss (SQL answers)."""
    if not isinstance(raw, bytes | str) or not raw:
        return None
    try:
        return IndexEntry.loads(raw)
    except (ValueError, KeyError, TypeError):
        return None


def watermark_of(raw: Any) -> int | None:
    """The index's watermark; unreadable counts as none (the index is rebuilt)."""
    text = text_of(raw)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _state(raw: str | None) -> dict[str, Any] | None:
    """A state value as written by this version (anything else reads as unknown)."""
    if raw is None:
        return None
    try:
        value = json_text.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("s"), str):
        return None
    return value


def shop_state_of(raw: str | None) -> ShopState | None:
    value = _state(raw)
    if value is None:
        return None
    main = value.get("m")
    return ShopState(value["s"], main if isinstance(main, str) else "")


def caller_status_of(raw: str | None) -> str | None:
    value = _state(raw)
    return None if value is None else str(value["s"])


def shop_value(version: int, shop: ShopState) -> str:
    return _dumps({"v": version, "s": shop.service, "m": shop.main_caller})


def caller_value(version: int, status: str | None) -> str:
    return _dumps({"v": version, "s": status or REMOVED})


def held_value(version: int) -> str:
    """A state being changed at ``version``: unknown to the call path (no ``s``)."""
    return _dumps({"v": version})


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))
