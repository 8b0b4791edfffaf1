"""The pure extension-mode rules: mode policy, slot choice, the dialled number, the collection
steps, the callback rule, display and dial strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from routing.extensions import (
    Entry,
    ExtensionSlot,
    ExtensionStep,
    ModePolicy,
    NumberMode,
    callback_needs_extension,
    check_extension_length,
    choose_extension_slot,
    dial_string,
    display,
    extension_step,
    extensions_of,
    modes_to_try,
    split_dialled,
    without_extension,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
AXB, EXT = NumberMode.AXB, NumberMode.EXTENSION


@pytest.mark.parametrize(("policy", "requested", "expected"), [
    (ModePolicy.AXB_THEN_EXTENSION, None, (AXB, EXT)),
    (ModePolicy.EXTENSION_THEN_AXB, None, (EXT, AXB)),
    (ModePolicy.AXB, None, (AXB,)),
    (ModePolicy.EXTENSION, None, (EXT,)),
    (ModePolicy.AXB_THEN_EXTENSION, EXT, (EXT,)),
    (ModePolicy.EXTENSION, AXB, (AXB,)),
])
def test_modes_to_try(policy: ModePolicy, requested: NumberMode | None,
                      expected: tuple[NumberMode, ...]) -> None:
    assert modes_to_try(policy, requested) == expected


def test_default_policy_is_axb_first_with_extension_overflow() -> None:
    assert modes_to_try(ModePolicy("axb_then_extension")) == (AXB, EXT)


@pytest.mark.parametrize(("length", "count", "first", "last"), [
    (1, 10, "0", "9"), (2, 100, "00", "99"), (3, 1000, "000", "999"),
    (4, 10_000, "0000", "9999"),
])
def test_extensions_of(length: int, count: int, first: str, last: str) -> None:
    values = extensions_of(length)
    assert (len(values), values[0], values[-1]) == (count, first, last)
    assert len(set(values)) == count and all(len(v) == length for v in values)


@pytest.mark.parametrize("length", [0, 5, -1])
def test_length_out_of_range(length: int) -> None:
    with pytest.raises(ValueError, match="1 to 4 digits"):
        check_extension_length(length)


def _s(x: str, ext: str, region: str = "", hours_ago: float | None = None) -> ExtensionSlot:
    last = None if hours_ago is None else NOW - timedelta(hours=hours_ago)
    return ExtensionSlot(x, ext, region, last)


def _choose(slots: list[ExtensionSlot], *, held: set[tuple[str, str]] | None = None,
            released: dict[tuple[str, str], datetime] | None = None,
            region: str | None = None) -> tuple[str, str] | None:
    got = choose_extension_slot(slots, held=frozenset(held or set()),
                                released_to_a=released or {}, now=NOW, cooldown=HOUR,
                                preferred_region=region)
    return None if got is None else (got.number, got.extension)


@pytest.mark.parametrize(("slots", "region", "expected"), [
    ([_s("x1", "1", hours_ago=1), _s("x1", "2")], None, ("x1", "2")),       # never released
    ([_s("x1", "1", hours_ago=1), _s("x2", "0", hours_ago=5)], None, ("x2", "0")),  # LRR
    ([_s("x2", "0"), _s("x1", "5")], None, ("x1", "5")),                    # tie: by number
    ([_s("x1", "5"), _s("x1", "0")], None, ("x1", "0")),                    # then extension
    ([_s("x1", "0", "SH"), _s("x2", "0", "BJ", 9)], "BJ", ("x2", "0")),      # region first
    ([_s("x1", "0", "SH")], "BJ", ("x1", "0")),                             # fallback region
    ([], None, None),
])
def test_slot_order(slots: list[ExtensionSlot], region: str | None,
                    expected: tuple[str, str] | None) -> None:
    assert _choose(slots, region=region) == expected


def test_held_slots_are_skipped() -> None:
    slots = [_s("x1", "0"), _s("x1", "1"), _s("x1", "2")]
    assert _choose(slots, held={("x1", "0"), ("x1", "1")}) == ("x1", "2")
    assert _choose(slots, held={(s.number, s.extension) for s in slots}) is None


@pytest.mark.parametrize(("released_ago", "expected"), [
    (timedelta(0), ("x1", "1")), (HOUR - timedelta(seconds=1), ("x1", "1")),
    (HOUR, ("x1", "0")), (3 * HOUR, ("x1", "0")),
])
def test_cooldown_applies_to_the_slot_not_the_number(released_ago: timedelta,
                                                     expected: tuple[str, str]) -> None:
    slots = [_s("x1", "0", hours_ago=5), _s("x1", "1", hours_ago=0.5)]
    # A released (x1, 0) released_ago: only that slot cools down; x1's other slots stay free.
    assert _choose(slots, released={("x1", "0"): NOW - released_ago}) == expected


LENGTHS = {"17000000001": 4, "+8617000000001": 4, "17000000002": 2}


@pytest.mark.parametrize(("raw", "expected"), [
    ("170000000011234", ("17000000001", "1234")),
    ("+86170000000011234", ("+8617000000001", "1234")),
    ("1700000000207", ("17000000002", "07")),
    ("17000000001123", None),      # too few digits for X's length
    ("1700000000112345", None),    # too many
    ("17000000001", None),         # X alone: nothing to split
    ("17000000003123", None),      # not an extension X
    ("", None),
])
def test_split_dialled(raw: str, expected: tuple[str, str] | None) -> None:
    assert split_dialled(raw, LENGTHS) == expected


@pytest.mark.parametrize(("entry", "known", "expected"), [
    (None, False, ExtensionStep.COLLECT),
    (Entry("1234", 1), True, ExtensionStep.ROUTE),
    (Entry("1234", 3), True, ExtensionStep.ROUTE),
    (Entry("9999", 1), False, ExtensionStep.COLLECT),   # wrong: ask again
    (Entry("12", 2), True, ExtensionStep.COLLECT),      # '#' after two digits: too short
    (Entry("", 1), False, ExtensionStep.COLLECT),       # time-out: ask again
    (Entry("9999", 3), False, ExtensionStep.INVALID),   # third wrong one
    (Entry("", 3), False, ExtensionStep.TIMEOUT),       # third time-out
    (Entry("12a4", 3), True, ExtensionStep.INVALID),
])
def test_extension_step(entry: Entry | None, known: bool, expected: ExtensionStep) -> None:
    assert extension_step(entry, 4, known) == expected


@pytest.mark.parametrize(("extensions", "needs"), [
    (["0001"], False), (["0001", "0002"], True), ([], True), (["0001", "0001"], False),
])
def test_callback_needs_extension(extensions: list[str], needs: bool) -> None:
    assert callback_needs_extension(extensions) is needs


@pytest.mark.parametrize(("x", "ext", "shown", "dialled"), [
    ("17000000001", "1234", "170 0000 0001 ext. 1234", "17000000001,1234"),
    ("17000000001", "", "170 0000 0001", "17000000001"),
    ("02012345678", "7", "020 1234 5678 ext. 7", "02012345678,7"),
    ("+4930123456", "12", "+4930123456 ext. 12", "+4930123456,12"),
])
def test_display_and_dial_string(x: str, ext: str, shown: str, dialled: str) -> None:
    assert display(x, ext) == shown
    assert dial_string(x, ext) == dialled


@pytest.mark.parametrize(("text", "heads"), [
    ("170 0000 0001 ext. 1234", ["170 0000 0001"]),
    ("17000000001,1234", ["17000000001"]),
    ("17000000001转12", ["17000000001"]),
    ("+8617000000001 x7", ["+8617000000001"]),
    ("170000000011234", ["17000000001123", "1700000000112", "170000000011", "17000000001"]),
    ("abc", []),
])
def test_without_extension(text: str, heads: list[str]) -> None:
    assert without_extension(text) == heads
