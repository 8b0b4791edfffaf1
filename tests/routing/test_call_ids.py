"""Which Asterisk-supplied ids are kept verbatim: Asterisk's own shapes, nothing that is or
holds a phone number, nothing wider than the call log's columns."""

from __future__ import annotations

import pytest

from routing.call_ids import MAX_CALL_ID, is_call_id, number_forms

CALLER = "13900000100"


@pytest.mark.parametrize("value", [
    "1795869349.39", "pnlab-1795869349.39", "pbx-1795869349.123456", "my.pbx_01-1700000000.7",
    "c82ae124-8572-4550-99f1-52622a109e17", "c82ae124-8572-4550-99f1-52622a109e17-2",
    "12345678-1234-1234-1234-123456789012",  # a UUID's digit runs are hex, not a number
    "1795869349.39-2", "pbx-1", "L-1", "u1", "link-42", "bulk-999999",
])
def test_asterisk_shaped_ids_are_kept(value: str) -> None:
    assert is_call_id(value)
    assert is_call_id(value, numbers=("+8613900000100", CALLER))


@pytest.mark.parametrize("value", [
    "", "-1", ".1", "a" * (MAX_CALL_ID + 1), "pbx-" + "9" * 10 + "." + "1" * 51,
    "13900000100", "+8613900000100", "pbx-13900000100.1", "13900000100.1",
    "id 1", "id\t1", "id;1", "id/1", "id:1", "pbx-1795869349.39\n", "ＡＢＣ",
    "\u0661\u0663\u0669\u0660\u0660\u0660\u0660\u0660\u0661\u0660\u0660", "1234567",
    "call-02112345678-x", "order-8613900000100",
])
def test_anything_else_is_refused(value: str) -> None:
    assert not is_call_id(value)


@pytest.mark.parametrize("value", [
    "1390000010.0100",  # epoch-shaped, but its digits are the caller's number
    "13900000-1000-4000-8000-000000000000",
    "00000000-0000-4000-8000-013900000100",
])
def test_an_id_holding_the_callers_number_is_refused_even_in_a_valid_shape(value: str) -> None:
    assert is_call_id(value)
    assert not is_call_id(value, numbers=("+86" + CALLER, CALLER))


def test_short_numbers_do_not_refuse_ids() -> None:
    assert is_call_id("pbx-1795869349.39", numbers=("9001", "", "+86"))


@pytest.mark.parametrize("raw", ["+8613900000100", "008613900000100", "13900000100",
                                 "+86 139-0000-0100", "013900000100"])
def test_number_forms_find_the_national_number_in_any_written_form(raw: str) -> None:
    assert CALLER in number_forms(raw)
    assert not is_call_id("pbx-1390000010.0100", numbers=number_forms(raw))


def test_short_or_missing_numbers_have_no_forms() -> None:
    assert number_forms("") == () and number_forms("9001") == ()
