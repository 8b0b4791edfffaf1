"""Shops' caller numbers in E.164, parsed once per distinct text: a bounded memo.

Every binding issue names the shop's caller number A, and a shop's few approved numbers repeat
on every issue; parsing and validating one costs about 10 microseconds, a tenth of the issue's
own CPU. Only A goes here: buyers' numbers are parsed every time and never remembered. The
result is :func:`routing.numbers.normalize`'s (an invalid number raises as it does, and is
not remembered).
"""

from __future__ import annotations

from routing.numbers import normalize

_MAX_TEXT = 40  # longer text is never a number: not worth a slot


class CallerForms:
    __slots__ = ("_forms", "_region", "_size")

    def __init__(self, region: str, size: int = 4096) -> None:
        self._region = region
        self._size = size
        self._forms: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._forms)

    def e164(self, raw: str) -> str:
        try:
            return self._forms[raw]
        except KeyError:
            pass
        form = normalize(raw, self._region)
        if len(raw) <= _MAX_TEXT and self._size:
            if len(self._forms) >= self._size:
                self._forms.clear()  # bounded; a platform with more callers parses more
            self._forms[raw] = form
        return form
