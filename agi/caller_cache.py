"""The caller numbers of recent calls, parsed once: a bounded LRU owned by one handler.

The result is exactly :func:`routing.numbers.try_normalize`'s for the same text
(:class:`routing.number_memo.NumberMemo` only remembers it); ``agi.caller_cache_size`` sets its
size, 0 by default so that buyers' numbers stay in memory no longer than their call.
"""

from __future__ import annotations

from functools import partial

from routing.number_memo import NumberMemo
from routing.numbers import try_normalize


class CallerNumbers(NumberMemo[str | None]):
    """``normalize(raw)`` == ``try_normalize(raw, region)``, remembered for the last ``size``
    distinct texts (0: no memory, every call parses)."""

    __slots__ = ()

    def __init__(self, region: str, size: int) -> None:
        super().__init__(partial(try_normalize, region=region), size)  # size < 0: ValueError

    def normalize(self, raw: str | None) -> str | None:
        return None if raw is None else self.get(raw)
