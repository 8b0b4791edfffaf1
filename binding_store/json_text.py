"""JSON text for the write paths that encode per call or per binding (call attempts, call
events, the batched issue requests): orjson, three to ten times faster than ``json`` here,
with ``json``'s result where orjson cannot.

The text is compact (no spaces), non-ASCII kept as it is. Datetimes and dataclasses go to
``default`` as with ``json`` (orjson's own formats are not used), so a value gives the same
text through either library; a value orjson refuses (an integer beyond 64 bits, a type only
``default`` knows and refuses) is encoded by ``json``, whose error, if any, is raised.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as compact JSON text; without ``default``, what ``json`` refuses (a
    datetime, bytes ...) is refused (``TypeError``)."""
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)


def loads(raw: bytes | str) -> Any:
    """``json.loads``; unreadable text raises ``ValueError`` as it does."""
    return orjson.loads(raw)
