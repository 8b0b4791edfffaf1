"""Pool numbers (X) by number class: which strings are accepted, their stored and dial forms,
masking; and that caller/buyer rules stay strict."""

from __future__ import annotations

import pytest

from routing.errors import InvalidNumber
from routing.number_classes import (
    DEFAULT_NUMBER_CLASSES,
    NumberClasses,
    NumberKind,
    RegionClasses,
    Segment,
)
from routing.numbers import mask, national, normalize, normalize_mobile, try_normalize

X700 = "+86700123456789012"
ONLY_700 = NumberClasses.of([RegionClasses("CN", segments=(Segment("700", 15, "700"),))])


@pytest.mark.parametrize(
    ("raw", "e164", "dial", "number_class"),
    [
        ("700123456789012", X700, "700123456789012", "700 (15 digits)"),
        ("+86700123456789012", X700, "700123456789012", "700 (15 digits)"),
        ("86700123456789012", X700, "700123456789012", "700 (15 digits)"),
        ("0086700123456789012", X700, "700123456789012", "700 (15 digits)"),
        (" +86 700 1234-5678 9012 ", X700, "700123456789012", "700 (15 digits)"),
        ("700000000000000", "+86700000000000000", "700000000000000", "700 (15 digits)"),
        ("17000000001", "+8617000000001", "17000000001", "mobile"),
        ("+86 138-1234-5678", "+8613812345678", "13812345678", "mobile"),
        ("010 6234 5678", "+861062345678", "1062345678", "fixed_line"),
        ("+862112345678", "+862112345678", "2112345678", "fixed_line"),
    ],
)
def test_default_cn_classes_accept_mobile_fixed_and_700(raw: str, e164: str, dial: str,
                                                       number_class: str) -> None:
    x = DEFAULT_NUMBER_CLASSES.pool_number(raw)
    assert (x.e164, x.region, x.number_class) == (e164, "CN", number_class)
    assert x.national == national(e164) == dial
    assert DEFAULT_NUMBER_CLASSES.dialled(raw) == e164


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("70012345678901", "not a valid phone number"),  # 14 digits
        ("7001234567890123", "not a valid phone number"),  # 16 digits
        ("701123456789012", "not a valid phone number"),  # 15 digits, not the 700 segment
        ("+85700123456789012", "not a valid phone number"),  # 700 under another code
        ("700 1234 5678 901x", "not a valid phone number"),
        ("4001234567", "a shared_cost number; region CN accepts mobile, fixed_line, 700"),
        ("8001234567", "a toll_free number"),
        ("+85291234567", "no number classes configured for region HK"),
        ("", "not a phone number"),
        ("1" * 40, "not a phone number"),
    ],
)
def test_default_cn_classes_refuse_the_rest_saying_why(raw: str, why: str) -> None:
    with pytest.raises(InvalidNumber, match=why):
        DEFAULT_NUMBER_CLASSES.pool_number(raw)


@pytest.mark.parametrize("raw", ["13812345678", "010 6234 5678"])
def test_after_the_transition_only_700_numbers_enter_the_pool(raw: str) -> None:
    with pytest.raises(InvalidNumber, match="region CN accepts 700 \\(15 digits\\)"):
        ONLY_700.pool_number(raw)
    assert ONLY_700.pool_number("700123456789012").e164 == X700
    # numbers imported before keep routing: the dialled form is still read
    assert ONLY_700.dialled(raw) == normalize(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("700123456789012", X700), ("+86700123456789012", X700), ("86700123456789012", X700),
     ("0086700123456789012", X700), ("17000000001", "+8617000000001"),
     ("4001234567", "+864001234567"), (None, None), ("", None), ("anonymous", None),
     ("s", None), ("7001234567890123", None), ("x" * 40, None)],
)
def test_dialled_forms_map_to_the_stored_form(raw: str | None, expected: str | None) -> None:
    assert DEFAULT_NUMBER_CLASSES.dialled(raw) == expected


@pytest.mark.parametrize(
    ("number", "masked"),
    [(X700, "700****9012"), ("700123456789012", "700****9012"),
     ("86700123456789012", "700****9012"), ("0086700123456789012", "700****9012")],
)
def test_700_numbers_mask_like_any_other(number: str, masked: str) -> None:
    assert mask(number) == masked


@pytest.mark.parametrize("raw", ["700123456789012", X700, "86700123456789012"])
def test_a_700_number_is_never_a_caller_or_buyer(raw: str) -> None:
    with pytest.raises(InvalidNumber):
        normalize(raw)
    with pytest.raises(InvalidNumber):
        normalize_mobile(raw)
    assert try_normalize(raw) is None


def test_a_configured_segment_of_another_region_needs_its_country_code() -> None:
    classes = NumberClasses.of([
        RegionClasses("CN", kinds=frozenset({NumberKind.MOBILE})),
        RegionClasses("GB", segments=(Segment("99", 12, "test range"),))])
    x = classes.pool_number("+44991234567890")
    assert (x.e164, x.region, x.number_class) == ("+44991234567890", "GB",
                                                    "test range (12 digits)")
    assert x.national == "991234567890"
    with pytest.raises(InvalidNumber):
        classes.pool_number("991234567890")  # national form: read as a CN number
    assert classes.pool_number("13812345678").e164 == "+8613812345678"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Segment("070", 15), "not starting with 0"),
        (lambda: Segment("7a0", 15), "digits"),
        (lambda: Segment("700", 3), "longer than the prefix"),
        (lambda: Segment("700", 18), "at most 17"),
        (lambda: RegionClasses("XX", kinds=frozenset({NumberKind.MOBILE})), "unknown"),
        (lambda: RegionClasses("cn", kinds=frozenset({NumberKind.MOBILE})), "unknown"),
        (lambda: RegionClasses("CN"), "no number could be imported"),
        (lambda: NumberClasses.of([ONLY_700.regions[0], ONLY_700.regions[0]]), "twice"),
    ],
)
def test_bad_class_definitions_are_refused(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_describe_lists_the_classes() -> None:
    assert DEFAULT_NUMBER_CLASSES.describe() == "CN: mobile, fixed_line, 700 (15 digits)"


@pytest.mark.parametrize("raw", ["ABC17000000001", "*17000000001", "17000000001#",
                                 "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660"
                                 "\u0661", "tel:17000000001", "ABC700123456789012"])
def test_a_dialled_number_with_letters_or_foreign_digits_is_no_x(raw: str) -> None:
    assert DEFAULT_NUMBER_CLASSES.dialled(raw) is None
    with pytest.raises(InvalidNumber):
        DEFAULT_NUMBER_CLASSES.pool_number(raw)
