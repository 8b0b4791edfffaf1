"""Pure protocol tests: environment, replies, quoting (checked against Asterisk's parsers)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agi.errors import AgiProtocolError
from agi.protocol import (
    MAX_COMMAND_BYTES,
    MAX_MSET_PAIRS,
    ReplyAssembler,
    build_command,
    command_label,
    encode_command,
    escape_app_arg,
    format_get_variable,
    format_mset,
    format_verbose,
    is_hangup_line,
    parse_env,
    parse_env_line,
    parse_reply_line,
    quote_arg,
)
from routing.call_ids import is_call_id
from tests.agi.asterisk_parse import agi_command_lines, agi_parse_args, exec_mset
from tests.agi.fake_asterisk import env_bytes, load_env_blocks

BLOCKS = load_env_blocks()
# Printable text without control characters: what a value may legitimately hold.
SAFE_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=60)


def _lines(block: bytes) -> list[str]:
    return block.decode().split("\n")[:-2]  # drop the blank terminator line


# --------------------------------------------------------------------------- environment


def test_fixture_has_the_five_recorded_calls() -> None:
    assert len(BLOCKS) == 5
    assert [dict(b)["agi_extension"] for b in BLOCKS] == ["9001", "9002", "9002", "9001", "9003"]


@pytest.mark.parametrize("index", range(5))
def test_parse_recorded_environment(index: int) -> None:
    block = BLOCKS[index]
    environment = parse_env(_lines(env_bytes(block)))
    assert environment.env == dict(block)
    assert environment.script == "route"
    assert environment.query == ""
    assert environment.args == ()
    assert environment.uniqueid == dict(block)["agi_uniqueid"]
    assert environment.env["agi_accountcode"] == ""  # "agi_accountcode: " (empty value)
    assert "agi_linkedid" not in environment.env  # Asterisk 22 sends none: pass it as an arg


def test_args_are_ordered_by_number_not_by_arrival() -> None:
    lines = [*_lines(env_bytes(BLOCKS[0])), "agi_arg_2: second", "agi_arg_1: first, with comma"]
    assert parse_env(lines).args == ("first, with comma", "second")


@pytest.mark.parametrize(
    ("raw", "script", "query"),
    [
        ("route", "route", ""),
        ("route?mode=test&x=1", "route", "mode=test&x=1"),
        ("route?", "route", ""),
        ("", "", ""),
    ],
)
def test_network_script_query_is_split_off(raw: str, script: str, query: str) -> None:
    environment = parse_env([f"agi_network_script: {raw}" if raw else "agi_network_script:"])
    assert (environment.script, environment.query) == (script, query)


def test_script_mode_uses_the_request_basename() -> None:
    environment = parse_env(["agi_request: /var/lib/asterisk/agi-bin/privnum-route"])
    assert environment.script == "privnum-route"


@pytest.mark.parametrize(
    "line",
    [
        "GET / HTTP/1.1",
        "Host: example.org",
        "agi_network",
        "agi_network:yes",  # res_agi always writes ": "
        ": value",
        "agi_bad-key: x",
        "agi_x: a\x00b",
        "\x16\x03\x01\x02",
    ],
)
def test_malformed_env_lines_are_refused(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_env_line(line)


def test_env_line_error_does_not_echo_the_value() -> None:
    with pytest.raises(AgiProtocolError) as info:
        parse_env_line("callerid 13800000001")
    assert "13800000001" not in str(info.value)


@pytest.mark.parametrize(
    "lines",
    [
        ["agi_uniqueid: a", "agi_uniqueid: b"],
        ["agi_arg_2: b"],
        ["agi_arg_1: a", "agi_arg_3: c"],
    ],
)
def test_inconsistent_environments_are_refused(lines: list[str]) -> None:
    with pytest.raises(AgiProtocolError):
        parse_env(lines)


def test_crlf_line_ends_are_tolerated() -> None:
    assert parse_env_line("agi_callerid: 13800000001\r") == ("agi_callerid", "13800000001")


# --------------------------------------------------------------------------- replies


@pytest.mark.parametrize(
    ("line", "result", "data", "extras"),
    [
        ("200 result=1", "1", None, {}),
        ("200 result=0", "0", None, {}),
        ("200 result=-1", "-1", None, {}),
        ("200 result=1 (merchant)", "1", "merchant", {}),
        ("200 result=1 (a (nested) v) with) sp)", "1", "a (nested) v) with) sp", {}),
        ("200 result=0 endpos=12345", "0", None, {"endpos": "12345"}),
        ("200 result=49 (dtmf) endpos=8000", "49", "dtmf", {"endpos": "8000"}),
        ("200 result= (timeout)", "", "timeout", {}),
        ("200 result=1 ()", "1", "", {}),
    ],
)
def test_parse_200(line: str, result: str, data: str | None, extras: dict[str, str]) -> None:
    reply = parse_reply_line(line)
    assert reply.ok and reply.code == 200
    assert (reply.result, reply.data, dict(reply.extras)) == (result, data, extras)


def test_result_int() -> None:
    assert parse_reply_line("200 result=-1").result_int == -1
    assert parse_reply_line("200 result=*1# (timeout)").result_int is None


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("510 Invalid or unknown command", 510),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511),
        ("511 Command Not Permitted on a dead channel", 511),
        ("520 Invalid command syntax.  Proper usage not available.", 520),
    ],
)
def test_parse_error_codes(line: str, code: int) -> None:
    reply = parse_reply_line(line)
    assert (reply.code, reply.ok, reply.text) == (code, False, line)


@pytest.mark.parametrize(
    "line",
    ["", "HANGUP", "200", "200 ok", "200 result=1 (unterminated", "999 what", "garbage", "520-x"],
)
def test_unparseable_replies(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_reply_line(line)


def test_multiline_520_is_assembled() -> None:
    usage = [
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: SET VARIABLE <variablename> <value>",
        "",
        "200 result=1 (a usage line that looks like a reply)",
        "520 End of proper usage.",
    ]
    assembler = ReplyAssembler()
    assert [assembler.feed(line) for line in usage[:-1]] == [None] * 4
    assert assembler.in_progress
    reply = assembler.feed(usage[-1])
    assert reply is not None and reply.code == 520
    assert reply.text == usage[0]
    assert reply.usage == tuple(usage[1:])
    assert not assembler.in_progress
    assert assembler.feed("200 result=0") == parse_reply_line("200 result=0")


def test_endless_520_usage_is_refused() -> None:
    assembler = ReplyAssembler(max_usage_lines=3)
    assembler.feed("520-Invalid command syntax.  Proper usage follows:")
    with pytest.raises(AgiProtocolError):
        for _ in range(10):
            assembler.feed("usage")


@pytest.mark.parametrize(
    ("line", "expected"),
    [("HANGUP", True), ("HANGUP\r", True), ("hangup", False), ("HANGUP 1", False)],
)
def test_hangup_line(line: str, expected: bool) -> None:
    assert is_hangup_line(line) is expected


# --------------------------------------------------------------------------- quoting


INJECTIONS = [
    'x" EXEC Dial "PJSIP/evil',
    '\\" HANGUP \\"',
    "trailing backslash \\",
    "\\\\\\",
    '"',
    "",
    "a b  c",
    "${SHELL(rm -rf /)}",
    "中文 名字",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_quoted_argument_stays_one_verbatim_argument(value: str) -> None:
    line = build_command("SET VARIABLE", "PRIVNUM_X", value)
    (command,) = agi_command_lines(encode_command(line))
    assert agi_parse_args(command.decode()) == ["SET", "VARIABLE", "PRIVNUM_X", value]


@given(SAFE_TEXT)
def test_quoting_round_trips_through_asterisk_parse_args(value: str) -> None:
    line = build_command("VERBOSE", value, "1")
    assert len(agi_command_lines(encode_command(line))) == 1
    assert agi_parse_args(line) == ["VERBOSE", value, "1"]


@pytest.mark.parametrize(
    "value", ["a\nHANGUP", "1\r\nEXEC Dial x", "nul\x00", "tab\t", "\x1b[2J", "\x7f"]
)
def test_control_characters_are_refused_not_sent(value: str) -> None:
    with pytest.raises(ValueError):
        quote_arg(value)
    with pytest.raises(ValueError):
        encode_command(f"VERBOSE {value}")
    with pytest.raises(ValueError):
        format_mset({"PRIVNUM_X": value})


def test_overlong_command_would_split_and_is_refused() -> None:
    longest = "NOOP " + "x" * (MAX_COMMAND_BYTES - len("NOOP ") - 1)
    assert len(agi_command_lines(encode_command(longest))) == 1
    too_long = longest + "y"
    assert len(agi_command_lines(too_long.encode() + b"\n")) == 2  # what Asterisk would do
    with pytest.raises(ValueError):
        encode_command(too_long)
    with pytest.raises(ValueError):
        encode_command("   ")


@pytest.mark.parametrize("verb", ["", "SET  VARIABLE", "EXEC\nNOOP", "GET-VAR", "1"])
def test_bad_verbs(verb: str) -> None:
    with pytest.raises(ValueError):
        build_command(verb, "x")


# --------------------------------------------------------------------------- MSet


MSET_VALUES = [
    "bridge",
    "+8613800000001",
    "a,b",
    "x=y=z",
    "(unbalanced",
    "closing)",
    "[bracket",
    'quote"d',
    "back\\slash",
    "\\,",
    "L(3600000:60000)",
    "PJSIP/${NUMBER}@trunk,30,b(pre^s^1)",
    "",
    " padded ",
]


@pytest.mark.parametrize("value", MSET_VALUES)
def test_mset_value_reaches_the_channel_verbatim(value: str) -> None:
    variables = {"PRIVNUM_ACTION": "bridge", "PRIVNUM_VALUE": value, "__PRIVNUM_LAST": "end"}
    assert exec_mset(format_mset(variables)) == variables


@given(
    st.dictionaries(
        st.from_regex(r"[A-Z_][A-Z0-9_]{0,15}", fullmatch=True), SAFE_TEXT, min_size=1, max_size=8
    )
)
def test_mset_round_trips_through_asterisk_parsers(variables: dict[str, str]) -> None:
    line = format_mset(variables)
    assert len(agi_command_lines(encode_command(line))) == 1
    assert exec_mset(line) == variables


def test_mset_is_one_command() -> None:
    line = format_mset({"A": "1", "B": "2"})
    assert line == 'EXEC MSet "A=1,B=2"'
    assert len(agi_command_lines(encode_command(line))) == 1


@pytest.mark.parametrize("name", ["", "1ABC", "A-B", "A B", "A=B", "A,B", "X(1)", "ÄB", "AB\n",
                                  ",", "A,", ",A"])
def test_mset_refuses_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        format_mset({name: "v"})
    # among good names, first, in the middle or last (the names are checked as one list)
    for variables in ({name: "v", "A": "1"}, {"A": "1", name: "v", "B": "2"},
                      {"A": "1", name: "v"}):
        with pytest.raises(ValueError):
            format_mset(variables)


def test_mset_limits() -> None:
    with pytest.raises(ValueError):
        format_mset({})
    many = {f"V{i}": "x" for i in range(MAX_MSET_PAIRS)}
    assert exec_mset(format_mset(many)) == many
    with pytest.raises(ValueError):
        format_mset({**many, "ONE_TOO_MANY": "x"})


def test_escape_app_arg_escapes_only_what_asterisk_interprets() -> None:
    assert escape_app_arg('a,b(c)[d]"e\\f=g$h') == 'a\\,b\\(c\\)\\[d\\]\\"e\\\\f=g$h'


# --------------------------------------------------------------------------- helpers


def test_command_label_never_carries_values() -> None:
    line = format_mset({"PRIVNUM_B": "+8613800000001"})
    assert command_label(line) == "EXEC MSet"
    assert command_label(build_command("SET VARIABLE", "X", "+8613800000001")) == "SET"
    assert command_label("") == "?"


def test_verbose_sanitises_free_text() -> None:
    line = format_verbose("line one\nline two\r\x00", 3)
    assert agi_parse_args(line) == ["VERBOSE", "line one line two  ", "3"]
    with pytest.raises(ValueError):
        format_verbose("x", 9)


def test_get_variable_command() -> None:
    assert agi_parse_args(format_get_variable("PRIVNUM_X")) == ["GET", "VARIABLE", "PRIVNUM_X"]
    with pytest.raises(ValueError):
        format_get_variable("X) EXEC")


@pytest.mark.parametrize(("uniqueid", "callerid", "arg"), [
    ("1764331200.17", "13900000100", "1764331200.17"),  # the first channel: its own id
    ("1764331200.17", "13900000100", "1764331200.16"),
    ("pbx-1764331200.17", "+8613900000100", "pbx-1764331200.17"),
    ("13900000100", "13900000100", "13900000100"),  # refused uniqueid: the arg is too
    ("1390000010.0100", "13900000100", "1390000010.0100"),  # a number across separators
    ("1764331200.17", "13900000100", "13900000100"),
    ("1764331200.17", "", "x" * 65),
])
def test_call_id_of_the_uniqueid_itself_answers_as_the_full_check(
        uniqueid: str, callerid: str, arg: str) -> None:
    environment = parse_env([f"agi_uniqueid: {uniqueid}", f"agi_callerid: {callerid}",
                             f"agi_arg_1: {arg}"])
    expected = arg if is_call_id(arg, numbers=environment.numbers) else None
    assert environment.call_id(arg) == expected
