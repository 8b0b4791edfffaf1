"""binding_store.json_text gives ``json``'s text (compact, non-ASCII as it is) for the values
the write paths encode, and ``json``'s result or error where orjson cannot encode a value."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import pytest

from binding_store.json_text import dumps, loads
from binding_store.recordset_insert import as_document


class Kind(StrEnum):
    CALL = "call"


@dataclass(frozen=True)
class Point:
    x: int


def reference(value: Any, default: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)


AT = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))

VALUES = [
    {"a": 'say "hi"', "b": "back\\slash \\n \\u0000", "c": "naïve 中文 🙂 \u2028\u2029"},
    ["tab\tnew\nline\r\x01\x1f\x7f", "", "{}[],:", None, True, False],
    {"n": 1.5, "i": -7, "big": 2**63, "zero": 0, "nested": {"k\"ey": [1, [2, {}]]}},
    {"kind": Kind.CALL, "at": AT, "day": AT.date(), "point": Point(3)},
    {"at": datetime(2026, 3, 1, tzinfo=UTC)},
]


@pytest.mark.parametrize("value", VALUES)
def test_the_text_is_jsons_with_str_for_the_rest(value: Any) -> None:
    assert dumps(value, default=str) == reference(value, str)
    assert loads(dumps(value, default=str)) == json.loads(reference(value, str))


def test_an_integer_beyond_64_bits_is_encoded_by_json() -> None:
    value = {"huge": 2**70, "small": 1}
    assert dumps(value, default=str) == reference(value, str)
    assert dumps(value, default=str) == '{"huge":1180591620717411303424,"small":1}'


def test_a_refused_value_raises_what_json_raises() -> None:
    def refuse(value: object) -> str:
        raise ValueError(f"no {type(value).__name__}")

    with pytest.raises(ValueError, match="no datetime"):
        dumps([datetime(2026, 3, 1)], default=refuse)
    with pytest.raises(ValueError, match="naive datetime"):
        as_document([{"at": datetime(2026, 3, 1)}])
    with pytest.raises(TypeError, match="bytes is not a column value"):
        as_document([{"cipher": b"\x00"}])


def test_timestamps_in_a_batch_keep_their_offset() -> None:
    text = as_document([{"at": AT, "utc": datetime(2026, 3, 1, tzinfo=UTC)}])["rows"]
    assert json.loads(text) == [{"at": "2026-03-01T12:00:00.123456+08:00",
                                 "utc": "2026-03-01T00:00:00+00:00"}]


@pytest.mark.parametrize("raw", [b"", b"{", "not json", b"\xff", '{"a": NaN'])
def test_unreadable_text_raises_value_error(raw: bytes | str) -> None:
    with pytest.raises(ValueError):
        loads(raw)


@pytest.mark.parametrize("value", [*VALUES[:3], [{"big": 2**70, "text": "naïve"}]])
def test_without_default_the_text_reads_back_as_the_value(value: Any) -> None:
    assert json.loads(dumps(value)) == value
    assert dumps(value) == reference(value, None)


@pytest.mark.parametrize("value", [{"at": AT}, [Point(1)], {"k": b"bytes"}, {1j}])
def test_without_default_what_json_refuses_is_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        dumps(value)
