"""routing.number_memo: the parse's own answer, remembered for repeats, bounded (least
recently used first); a parse that raises raises every time and is never remembered. (Its
use for callers on the call path: tests/agi/test_caller_cache.py.)"""

from __future__ import annotations

from functools import partial

import pytest

from routing.errors import InvalidNumber
from routing.number_memo import NumberMemo
from routing.numbers import normalize

TEXTS = ["13800138000", "+8613800138000", "0086 138-0013-8000", "010 6552 9988", "+14155550100"]


def shops_callers(size: int = 4096) -> NumberMemo[str]:
    return NumberMemo(partial(normalize, region="CN"), size)


@pytest.mark.parametrize("text", TEXTS)
def test_the_form_is_normalizes(text: str) -> None:
    memo = shops_callers()
    assert memo.get(text) == normalize(text, "CN")
    assert memo.get(text) == normalize(text, "CN")  # the remembered one
    assert (memo.misses, memo.hits) == (1, 1)


def test_a_repeat_is_not_parsed_again() -> None:
    parsed: list[str] = []

    def counting(raw: str) -> str:
        parsed.append(raw)
        return normalize(raw, "CN")

    memo = NumberMemo(counting, 8)
    assert [memo.get(t) for t in ("13800138000", "13800138000", "13900139000")] == [
        "+8613800138000", "+8613800138000", "+8613900139000"]
    assert parsed == ["13800138000", "13900139000"]


@pytest.mark.parametrize("text", ["12345", "abc", "+86 138 0013 800x"])
def test_an_invalid_number_raises_every_time(text: str) -> None:
    memo = shops_callers()
    for _ in range(2):
        with pytest.raises(InvalidNumber):
            memo.get(text)
    assert len(memo) == 0


def test_the_memo_is_bounded() -> None:
    memo = shops_callers(size=2)
    for i in range(5):
        assert memo.get(f"1380013800{i}") == f"+861380013800{i}"
    assert 1 <= len(memo) <= 2


def test_negative_size_is_refused() -> None:
    with pytest.raises(ValueError):
        NumberMemo(str, -1)


def test_recall_answers_only_what_was_remembered_and_never_parses() -> None:
    def refusing(raw: str) -> str:
        raise AssertionError(f"parsed {raw}")

    memo = NumberMemo(refusing, 2)
    assert memo.recall("13800138000") is None
    memo.remember("13800138000", "+8613800138000")
    memo.remember("13900139000", "+8613900139000")
    assert memo.recall("13800138000") == "+8613800138000"  # now the most recent
    memo.remember("13700137000", "+8613700137000")  # evicts 139...
    assert memo.recall("13900139000") is None
    assert (len(memo), memo.hits, memo.misses) == (2, 1, 0)
    memo.remember("13800138000", "changed")  # a text already remembered keeps its value
    assert memo.recall("13800138000") == "+8613800138000"
    memo.remember("1" * 41, "+86")  # too long to take a slot
    assert memo.recall("1" * 41) is None
