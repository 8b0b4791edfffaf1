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
