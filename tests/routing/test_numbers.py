from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.errors import InvalidNumber, NotMobileNumber
from routing.numbers import (
    mask,
    national,
    normalize,
    normalize_mobile,
    try_normalize,
    written_as_number,
)


@pytest.mark.parametrize(
    "raw",
    ["13812345678", "+86 138-1234-5678", "008613812345678", "8613812345678",
     " 138 1234 5678 ", "+8613812345678", "138-1234-5678"],
)
def test_cn_mobile_forms_normalise_to_e164(raw: str) -> None:
    assert normalize(raw) == "+8613812345678"
    assert normalize_mobile(raw) == "+8613812345678"


@pytest.mark.parametrize("raw", ["", "abc", "12", "9001", "+86 000", "1" * 40, "1381234567"])
def test_garbage_is_invalid(raw: str) -> None:
    with pytest.raises(InvalidNumber):
        normalize(raw)


def test_landline_is_valid_but_not_mobile() -> None:
    assert normalize("010 6234 5678") == "+861062345678"
    with pytest.raises(NotMobileNumber):
        normalize_mobile("010 6234 5678")


@pytest.mark.parametrize("raw", [None, "", "anonymous", "Unknown", "restricted", "garbage"])
def test_missing_or_withheld_caller_id_is_none(raw: str | None) -> None:
    assert try_normalize(raw) is None


@pytest.mark.parametrize(
    ("number", "masked"),
    [("+8613812345678", "138****5678"), ("13812345678", "138****5678"),
     ("008613812345678", "138****5678"), ("8613812345678", "138****5678"),
     ("+861062345678", "106****5678"), ("5678", "****"), ("12345", "*2345"), ("", "")],
)
def test_mask_shows_at_most_three_and_four_digits(number: str, masked: str) -> None:
    assert mask(number) == masked
    assert mask(masked) == masked  # a masked caller ID from a CDR stays as it is


@given(st.text(alphabet="0123456789+*- ab", max_size=20))
def test_mask_is_idempotent_and_never_reveals_more(number: str) -> None:
    once = mask(number)
    assert mask(once) == once
    digits = [ch for ch in once if ch.isdigit()]
    assert len(digits) <= 7


@given(st.text(alphabet="0123456789", max_size=20))
def test_a_plain_cn_number_masks_as_its_other_spellings(national: str) -> None:
    # "+86..." takes a shorter path than the other spellings of the same number
    assert mask("+86" + national) == mask("0086" + national)


@pytest.mark.parametrize(("other", "masked"), [
    ("139*****0001", "***0001"), ("13****0001", "**0001"), ("*****", ""), ("1*2345", "*2345"),
])
def test_only_masks_own_shapes_pass_unchanged(other: str, masked: str) -> None:
    assert mask(other) == masked


def test_error_messages_carry_masked_numbers_only() -> None:
    with pytest.raises(InvalidNumber) as info:
        normalize("+86 13812345678999")
    assert "13812345678999" not in str(info.value)


def test_national_form_for_cn_trunks() -> None:
    assert national("+8613812345678") == "13812345678"


BOUND = "+8613900000100"


@pytest.mark.parametrize(
    "raw",
    ["ABC13900000100", "13900000100ABC", "139ABC00000100", "*13900000100", "13900000100#",
     "#13900000100", "*86*13900000100", "\u0661\u0663\u0669\u0660\u0660\u0660\u0660\u0660"
     "\u0661\u0660\u0660",  # Arabic-Indic digits
     "\u06f1\u06f3\u06f9\u06f0\u06f0\u06f0\u06f0\u06f0\u06f1\u06f0\u06f0",  # Persian digits
     "\uff11\uff13\uff19\uff10\uff10\uff10\uff10\uff10\uff11\uff10\uff10",  # full-width
     "13900000\u0661\u0660\u0660", "tel:+8613900000100", "13900000100;ext=1",
     "+8613900000100 x12", "+86+13900000100", "sip:13900000100@trunk"],
)
def test_a_caller_id_that_only_looks_like_the_bound_number_is_not_it(raw: str) -> None:
    assert try_normalize(raw) is None
    with pytest.raises(InvalidNumber):
        normalize(raw)


@pytest.mark.parametrize(
    "raw", ["13900000100", "+8613900000100", "008613900000100", "+86 139-0000-0100",
            "(139) 0000 0100", "139.0000.0100", " 13900000100 "])
def test_a_caller_id_written_with_ascii_digits_and_separators_is_the_bound_number(
        raw: str) -> None:
    assert try_normalize(raw) == BOUND


def _parsed(raw: str, region: str) -> str | None:
    """The full parse, as before the plain-number shortcut: the reference."""
    try:
        parsed = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _digit_strings(seed: int) -> list[str]:
    """Every three-digit start (carrier codes, trunk and international prefixes, country
    codes among them) at the lengths numbers have, the rest of the digits random."""
    rnd = random.Random(seed)
    return [f"{start:03d}" + "".join(rnd.choice("0123456789") for _ in range(length - 3))
            for start in range(1000) for length in (3, 5, 7, 8, 10, 11, 12, 13, 17, 18)]


@pytest.mark.parametrize("region", ["CN", "US", "GB", "DE", "IT", "HK", "RU", "BR"])
def test_plain_digits_normalise_exactly_as_the_full_parse(region: str) -> None:
    for raw in _digit_strings(seed=len(region) * 7919 + ord(region[0])):
        expected = _parsed(raw, region) if written_as_number(raw) else None
        assert try_normalize(raw, region) == expected, (raw, region)


@pytest.mark.parametrize("region", ["CN", "US", "IT"])
def test_e164_digits_normalise_exactly_as_the_full_parse(region: str) -> None:
    """``+`` and digits: every country code of one to three digits, national numbers with
    trunk prefixes and carrier codes among them."""
    for raw in _digit_strings(seed=len(region) * 104_729 + ord(region[0])):
        assert try_normalize("+" + raw, region) == _parsed("+" + raw, region), (raw, region)


@given(st.from_regex(r"\+[1-9][0-9]{2,17}", fullmatch=True))
def test_e164_strings_normalise_exactly_as_the_full_parse(raw: str) -> None:
    assert try_normalize(raw) == _parsed(raw, "CN")


@given(st.from_regex(r"1[0-9]{10}", fullmatch=True))
def test_cn_eleven_digit_strings_normalise_exactly_as_the_full_parse(raw: str) -> None:
    assert try_normalize(raw) == _parsed(raw, "CN")
