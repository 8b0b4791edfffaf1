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

    __slots__ = ("_all", "_lines")

    def __init__(self, region: str, size: int, shop_lines: int = SHOP_LINES) -> None:
        parse = partial(try_normalize, region=region)
        self._all = NumberMemo(parse, size)  # size < 0: ValueError
        # Only ever filled by remember_shop_line: recall never parses.
        self._lines: NumberMemo[str | None] = NumberMemo(parse, shop_lines)

    def __len__(self) -> int:
        return len(self._all)

    @property
    def hits(self) -> int:
        return self._all.hits

    @property
    def misses(self) -> int:
        return self._all.misses

    @property
    def line_hits(self) -> int:
        return self._lines.hits

    @property
    def shop_lines(self) -> int:
        return len(self._lines)

    def normalize(self, raw: str | None) -> str | None:
        if raw is None:
            return None
        e164 = self._lines.recall(raw)
        return e164 if e164 is not None else self._all.get(raw)

    def remember_shop_line(self, raw: str | None, e164: str | None) -> None:
        """``raw`` (parsed as ``e164``) was just matched as a binding's caller number A."""
        if raw is not None and e164 is not None:
            self._lines.remember(raw, e164)
