"""Reading Asterisk configuration with pyst2's parser: what a real /etc/asterisk holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.errors import ConfigurationError
from scripts.asterisk_read import AsteriskConfig

STOCK_LIKE = """\
;--
 A block comment, as the Debian samples have;
 key = value lines in here are not items.
--;
[general]
static=yes ; trailing comment
#include "extensions_custom.conf"
#tryinclude extensions_local.conf

[phones](!)
type=endpoint

[alice](phones)
auth = alice ;-- not a block comment --;

[from-trunk]
exten => _X.,1,NoOp(call to ${EXTEN})
 same => n(dial),Dial(PJSIP/${EXTEN}@trunk,30)
 same => n,Hangup()
exten => s,1,Goto(from-trunk,100,dial)
"""


def test_reads_sections_items_directives_and_templates() -> None:
    config = AsteriskConfig(STOCK_LIKE, "extensions.conf")
    assert config.section_names == ["general", "phones", "alice", "from-trunk"]
    assert config.items("general") == [("static", "yes")]
    assert config.values("alice", "auth") == ["alice"]
    assert config.options == {"phones": "!", "alice": "phones"}
    assert [(d.line, d.kind, d.argument) for d in config.directives] == [
        (7, "include", "extensions_custom.conf"), (8, "tryinclude", "extensions_local.conf")]
    with pytest.raises(KeyError):
        config.items("nosuch")


def test_dialplan_steps_resolve_same_lines_and_labels() -> None:
    steps = AsteriskConfig(STOCK_LIKE).dialplan("from-trunk")
    assert [(s.exten, s.priority, s.app, s.data) for s in steps] == [
        ("_X.", "1", "NoOp", "call to ${EXTEN}"),
        ("_X.", "n(dial)", "Dial", "PJSIP/${EXTEN}@trunk,30"),
        ("_X.", "n", "Hangup", ""),
        ("s", "1", "Goto", "from-trunk,100,dial"),
    ]
    assert steps[1].label == "dial" and steps[1].line == 18


def test_a_malformed_file_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.conf"
    path.write_text("[ok]\na=1\nthis line has no equals sign\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"broken.conf:3: Item must be in name = value"):
        AsteriskConfig.read(path)
    with pytest.raises(ConfigurationError, match="cannot read"):
        AsteriskConfig.read(tmp_path / "missing.conf")


def test_a_latin1_byte_in_a_comment_does_not_stop_reading(tmp_path: Path) -> None:
    path = tmp_path / "minivm.conf"
    path.write_bytes(b"; Ume\xe5\n[general]\nformat=wav\n")
    assert AsteriskConfig.read(path).items("general") == [("format", "wav")]
