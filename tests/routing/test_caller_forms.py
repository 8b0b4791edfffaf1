"""routing.caller_forms: the same E.164 as normalize, remembered for repeats, bounded; an
invalid number raises every time and is never remembered."""

from __future__ import annotations

import pytest

from routing.caller_forms import CallerForms
from routing.errors import InvalidNumber
from routing.numbers import normalize

TEXTS = ["13800138000", "+8613800138000", "0086 138-0013-8000", "010 6552 9988", "+14155550100"]


@pytest.mark.parametrize("text", TEXTS)
def test_the_form_is_normalizes(text: str) -> None:
    forms = CallerForms("CN")
    assert forms.e164(text) == normalize(text, "CN")
    assert forms.e164(text) == normalize(text, "CN")  # the remembered one


def test_a_repeat_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    forms = CallerForms("CN")
    parsed: list[str] = []

    def counting(raw: str, region: str) -> str:
        parsed.append(raw)
        return normalize(raw, region)

    monkeypatch.setattr("routing.caller_forms.normalize", counting)
    assert [forms.e164(t) for t in ("13800138000", "13800138000", "13900139000")] == [
        "+8613800138000", "+8613800138000", "+8613900139000"]
    assert parsed == ["13800138000", "13900139000"]


@pytest.mark.parametrize("text", ["12345", "abc", "+86 138 0013 800x"])
def test_an_invalid_number_raises_every_time(text: str) -> None:
    forms = CallerForms("CN")
    for _ in range(2):
        with pytest.raises(InvalidNumber):
            forms.e164(text)


def test_the_memo_is_bounded() -> None:
    forms = CallerForms("CN", size=2)
    for i in range(5):
        assert forms.e164(f"1380013800{i}") == f"+861380013800{i}"
    assert 1 <= len(forms) <= 2
