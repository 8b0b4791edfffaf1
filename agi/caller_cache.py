"""The caller numbers of recent calls, parsed once: a bounded LRU owned by one handler.

Parsing and validating a number with ``phonenumbers`` costs 10-20 microseconds, a few percent
of a call's CPU on the FastAGI path, and callers repeat (a buyer calling back, a shop calling its
buyers). The result is exactly :func:`routing.numbers.try_normalize`'s for the same text: the
cache only remembers it. It lives in the process's memory only, for as long as the handler
does, and holds at most ``size`` entries; nothing in it is ever logged, stored or sent.
"""

from __future__ import annotations

from routing.numbers import try_normalize

# Caller-ID text longer than this is never a number (try_normalize refuses it): not worth a
# slot, and it keeps the cache's memory bounded by its entry count.
_MAX_KEY = 40


class CallerNumbers:
    """``normalize(raw)`` == ``try_normalize(raw, region)``, remembered for the last ``size``
    distinct texts (0: no memory, every call parses)."""

    __slots__ = ("_entries", "_region", "_size", "hits", "misses")

    def __init__(self, region: str, size: int) -> None:
        if size < 0:
            raise ValueError("caller cache size must be >= 0")
        self._region = region
        self._size = size
        self._entries: dict[str, str | None] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def normalize(self, raw: str | None) -> str | None:
        if raw is None:
            return None
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
        value = try_normalize(raw, self._region)
        if self._size and len(raw) <= _MAX_KEY:
            if len(entries) >= self._size:
                del entries[next(iter(entries))]  # the least recently used
            entries[raw] = value
        return value
