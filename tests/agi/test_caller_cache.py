"""The caller parse cache answers exactly what an uncached parse answers, and stays bounded."""

from __future__ import annotations

import pytest

from agi.caller_cache import CallerNumbers
from routing.numbers import try_normalize

CALLER_IDS = [
    "13900000100", "+8613900000100", "008613900000100", "8613900000100", "139 0000 0100",
    "139-0000-0100", "01062345678", "+14155550123", "12345", "", " ", "anonymous", "Unknown",
    "ABC13900000100", "١٣٩٠٠٠٠٠١٠٠", "*86", "#1", "+", "0" * 33, "13900000100 ", "12593001234",
    "17012345678", "+86 700 1234 5678",
]


@pytest.mark.parametrize("raw", CALLER_IDS)
@pytest.mark.parametrize("region", ["CN", "US"])
def test_cached_parse_equals_the_uncached_one(raw: str, region: str) -> None:
    cache = CallerNumbers(region, size=8)
    expected = try_normalize(raw, region)
    assert cache.normalize(raw) == expected  # miss
    assert cache.normalize(raw) == expected  # hit
    assert (cache.misses, cache.hits) == (1, 1)


def test_none_is_none_and_not_remembered() -> None:
    cache = CallerNumbers("CN", size=8)
    assert cache.normalize(None) is None
    assert len(cache) == 0


def test_least_recently_used_goes_first() -> None:
    cache = CallerNumbers("CN", size=2)
    cache.normalize("13900000100")
    cache.normalize("13900000101")
    cache.normalize("13900000100")  # now the most recent
    cache.normalize("13900000102")  # evicts ...101
    assert len(cache) == 2
    misses = cache.misses
    cache.normalize("13900000100")
    assert cache.misses == misses
    cache.normalize("13900000101")
    assert cache.misses == misses + 1


def test_size_zero_remembers_nothing() -> None:
    cache = CallerNumbers("CN", size=0)
    assert cache.normalize("13900000100") == "+8613900000100"
    assert cache.normalize("13900000100") == "+8613900000100"
    assert (len(cache), cache.misses, cache.hits) == (0, 2, 0)


def test_long_text_is_parsed_but_takes_no_slot() -> None:
    cache = CallerNumbers("CN", size=8)
    raw = "1" * 41
    assert cache.normalize(raw) == try_normalize(raw, "CN")
    assert len(cache) == 0


def test_negative_size_is_refused() -> None:
    with pytest.raises(ValueError):
        CallerNumbers("CN", size=-1)


def test_a_shop_line_is_remembered_even_with_the_cache_off() -> None:
    cache = CallerNumbers("CN", size=0)
    assert cache.normalize("13900000100") == "+8613900000100"
    cache.remember_shop_line("13900000100", "+8613900000100")
    assert cache.normalize("13900000100") == "+8613900000100"
    assert (cache.misses, cache.line_hits, cache.shop_lines, len(cache)) == (1, 1, 1, 0)
    assert cache.normalize("13900000101") == "+8613900000101"  # anyone else: parsed
    assert cache.misses == 2


def test_shop_lines_stay_bounded_least_recently_used_first() -> None:
    cache = CallerNumbers("CN", size=0, shop_lines=2)
    for raw in ("13900000100", "13900000101"):
        cache.remember_shop_line(raw, try_normalize(raw))
    cache.normalize("13900000100")  # now the most recent
    cache.remember_shop_line("13900000102", "+8613900000102")  # evicts ...101
    assert cache.shop_lines == 2
    cache.normalize("13900000101")
    assert (cache.line_hits, cache.misses) == (1, 1)
    cache.normalize("13900000102")
    cache.normalize("13900000100")
    assert (cache.line_hits, cache.misses) == (3, 1)


def test_no_shop_line_memory_and_nothing_missing_is_remembered() -> None:
    cache = CallerNumbers("CN", size=0, shop_lines=0)
    cache.remember_shop_line("13900000100", "+8613900000100")
    assert cache.shop_lines == 0
    cache = CallerNumbers("CN", size=0)
    cache.remember_shop_line(None, "+8613900000100")
    cache.remember_shop_line("anonymous", None)
    assert cache.shop_lines == 0
    with pytest.raises(ValueError):
        CallerNumbers("CN", size=0, shop_lines=-1)
