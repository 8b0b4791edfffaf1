"""``bench.cdr_ingest``'s copies of the recorded session are distinct calls the call log keeps
under their own ids (an id it would not keep gets a stand-in every copy shares)."""

from __future__ import annotations

import re

import pytest

from bench.cdr_ingest import _stream, copy_id
from routing.call_ids import is_call_id
from tests.agi.fake_ami import events_of
from tests.fixtures.ami.scenario import SESSION

_IDS = sorted({m.decode() for m in re.findall(rb"\r\n(?:UniqueID|LinkedID): ([^\r]+)",
                                              events_of(SESSION))})
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(-\d+)?")


def test_the_session_has_both_shapes_of_id() -> None:
    assert any(i.startswith("pnlab-") for i in _IDS)
    assert any(_UUID.fullmatch(i) for i in _IDS)


@pytest.mark.parametrize("value", _IDS)
def test_every_copy_of_an_id_is_kept_as_it_is_and_distinct(value: str) -> None:
    copies = [copy_id(value, n) for n in (0, 1, 2, 199)]
    assert all(is_call_id(c) for c in copies)
    assert len(set(copies)) == len(copies)


def test_no_two_ids_of_the_session_share_a_copy() -> None:
    copies = [copy_id(v, n) for v in _IDS for n in range(200)]
    assert len(set(copies)) == len(copies)


def test_the_stream_carries_the_copies() -> None:
    stream = _stream(3)
    for n in range(3):
        assert f"UniqueID: {copy_id('pnlab-1795869342.17', n)}\r\n".encode() in stream
