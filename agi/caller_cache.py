"""The caller numbers of recent calls, parsed once: bounded LRUs owned by one handler.

The result is exactly :func:`routing.numbers.try_normalize`'s for the same text
(:class:`routing.number_memo.NumberMemo` only remembers it). Two memories:

* every recent caller, ``agi.caller_cache_size`` of them, 0 by default so that buyers'
  numbers stay in memory no longer than their call;
* the shops' own caller numbers (A) that called recently, ``SHOP_LINES`` of them, always on:
  a caller is put there only once a decision has matched it as a binding's A, and those
  numbers are no buyer data (the call log shows them plain). Shops call out far more often
  than any one buyer calls back, and their parse is a few percent of a call's CPU.
"""

from __future__ import annotations

from functools import partial

from routing.number_memo import NumberMemo
from routing.numbers import try_normalize

SHOP_LINES = 10_000
"""Distinct caller-ID texts of shops' caller numbers remembered per handler."""


class CallerNumbers:
    """``normalize(raw)`` == ``try_normalize(raw, region)``, remembered for the last ``size``
    distinct texts (0: no memory) and for the last ``shop_lines`` texts that
    :meth:`remember_shop_line` was told are a shop's caller number."""

    __slots__ = ("_all", "_lines", "_lines_size", "line_hits")

    def __init__(self, region: str, size: int, shop_lines: int = SHOP_LINES) -> None:
        if shop_lines < 0:
            raise ValueError("shop line memory size must be >= 0")
        self._all = NumberMemo(partial(try_normalize, region=region), size)  # size < 0: error
        self._lines: dict[str, str] = {}
        self._lines_size = shop_lines
        self.line_hits = 0

    def __len__(self) -> int:
        return len(self._all)

    @property
    def hits(self) -> int:
        return self._all.hits

    @property
    def misses(self) -> int:
        return self._all.misses

    @property
    def shop_lines(self) -> int:
        return len(self._lines)

    def normalize(self, raw: str | None) -> str | None:
        if raw is None:
            return None
        lines = self._lines
        e164 = lines.pop(raw, None)
        if e164 is not None:
            lines[raw] = e164  # now the most recent (dicts keep insertion order)
            self.line_hits += 1
            return e164
        return self._all.get(raw)

    def remember_shop_line(self, raw: str | None, e164: str | None) -> None:
        """``raw`` (parsed as ``e164``) was just matched as a binding's caller number A."""
        if raw is None or e164 is None or self._lines_size == 0 or raw in self._lines:
            return
        if len(self._lines) >= self._lines_size:
            del self._lines[next(iter(self._lines))]  # the least recently used
        self._lines[raw] = e164
