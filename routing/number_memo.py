"""Parsed phone numbers remembered per distinct text: a bounded LRU owned by its user.

Parsing and validating a number with ``phonenumbers`` costs 10-20 microseconds, a few percent
of a call's CPU on the FastAGI path and a tenth of a binding issue's, and the same texts repeat
(a buyer calling back, a shop's few caller numbers). The memo answers exactly what its
``parse`` answers for the same text: it only remembers it. It lives in the process's memory
only, for as long as its owner does, and holds at most ``size`` entries; nothing in it is ever
logged, stored or sent. A parse that raises is not remembered: the next one raises again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

# Text longer than this is never a number (the parsers refuse it): not worth a slot, and it
# keeps the memo's memory bounded by its entry count.
_MAX_KEY = 40


class NumberMemo(Generic[T]):
    """``get(raw)`` == ``parse(raw)``, remembered for the last ``size`` distinct texts (0: no
    memory, every call parses)."""

    __slots__ = ("_entries", "_parse", "_size", "hits", "misses")

    def __init__(self, parse: Callable[[str], T], size: int) -> None:
        if size < 0:
            raise ValueError("number memo size must be >= 0")
        self._parse = parse
        self._size = size
        self._entries: dict[str, T] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, raw: str) -> T:
        entries = self._entries
        try:
            value = entries.pop(raw)
        except KeyError:
            pass
        else:
            entries[raw] = value  # now the most recent (dicts keep insertion order)
            self.hits += 1
            return value
        self.misses += 1
        value = self._parse(raw)
        self.remember(raw, value)
        return value

    def recall(self, raw: str) -> T | None:
        """What ``raw`` parsed to if it is remembered (a hit), else ``None`` without parsing
        (a memo whose parse may answer ``None`` cannot tell the two apart: use :meth:`get`)."""
        entries = self._entries
        value = entries.pop(raw, None)
        if value is not None:
            entries[raw] = value  # now the most recent
            self.hits += 1
        return value

    def remember(self, raw: str, value: T) -> None:
        """Remember ``value`` as what ``raw`` parses to (its owner knows it already)."""
        entries = self._entries
        if not self._size or len(raw) > _MAX_KEY or raw in entries:
            return
        if len(entries) >= self._size:
            del entries[next(iter(entries))]  # the least recently used
        entries[raw] = value
