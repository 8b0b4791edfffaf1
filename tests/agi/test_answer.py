"""The routing answer on the wire: what Asterisk runs, and what its CDRs could keep of it."""

from __future__ import annotations

from agi import channel_vars as cv
from agi.answer import answer_commands
from tests.agi.asterisk_parse import agi_parse_args, answer_variables

BRIDGE = {cv.ACTION: "bridge", cv.DIAL_NUMBER: "13900000001", cv.CALLERID: "17000000001",
          cv.CDR_CALLERID: "13800000001", cv.MAX_SECONDS: "60", cv.X: "+8617000000001"}


def test_the_dial_number_is_set_alone_before_the_mset_and_inherited() -> None:
    lines = answer_commands(BRIDGE)
    assert lines[0] == 'SET VARIABLE "_PRIVNUM_DIAL_NUMBER" "13900000001"'
    assert len(lines) == 2 and lines[1].startswith("EXEC MSet ")
    assert "13900000001" not in lines[1]  # never an application's argument (CDR lastdata)
    assert answer_variables(lines) == BRIDGE
    # the Local channel's dialling half needs the number and X: one-level inheritance
    mset_names = {pair.split("=", 1)[0] for pair in agi_parse_args(lines[1])[2].split(",")}
    assert "_PRIVNUM_CALLERID" in mset_names and "PRIVNUM_ACTION" in mset_names


def test_a_reject_is_one_mset_without_a_dial_number() -> None:
    lines = answer_commands({**BRIDGE, cv.ACTION: "reject", cv.DIAL_NUMBER: ""})
    assert len(lines) == 1 and lines[0].startswith("EXEC MSet ")
    assert "DIAL_NUMBER" not in lines[0]
