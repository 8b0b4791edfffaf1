"""Python ports of how Asterisk 22 reads what we send, to test quoting against the real rules.

* :func:`agi_command_lines` - run_agi's ``fgets`` into ``char buf[2048]`` (res/res_agi.c).
* :func:`agi_parse_args` - ``parse_args()`` in res/res_agi.c.
* :func:`app_separate_args` - ``__ast_app_separate_args()`` in main/app.c.
* :func:`mset` - ``pbx_builtin_setvar_multiple()`` (MSet) in main/pbx_variables.c.
"""

from __future__ import annotations

AGI_BUF_LEN = 2048
MAX_ARGS = 128


def agi_command_lines(stream: bytes) -> list[bytes]:
    """Split a byte stream into the commands res_agi executes (a long line becomes several)."""
    out: list[bytes] = []
    rest = stream
    while rest:
        newline = rest.find(b"\n")
        end = len(rest) if newline < 0 else newline + 1
        chunk = rest[: min(end, AGI_BUF_LEN - 1)]
        rest = rest[len(chunk) :]
        out.append(chunk.rstrip(b"\n"))
    return out


def agi_parse_args(s: str) -> list[str]:
    argv: list[list[str]] = []
    quoted = escaped = False
    whitespace = True
    for ch in s:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                argv.append([])
                whitespace = False
            escaped = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        # normal:
        if whitespace:
            if len(argv) >= MAX_ARGS - 1:
                continue
            argv.append([])
            whitespace = False
        argv[-1].append(ch)
        escaped = False
    return ["".join(a) for a in argv]


def app_separate_args(buf: str, delim: str, remove_chars: bool, arraylen: int) -> list[str]:
    chars = list(buf)
    out: list[str] = []
    scan = 0
    paren = bracket = 0
    quote = False
    wasdelim = -1
    while scan < len(chars) and len(out) < arraylen - 1:
        start = scan
        ended = False
        while scan < len(chars):
            ch = chars[scan]
            if ch == "(":
                paren += 1
            elif ch == ")":
                paren = max(0, paren - 1)
            elif ch == "[":
                bracket += 1
            elif ch == "]":
                bracket = max(0, bracket - 1)
            elif ch == '"' and delim != '"':
                quote = not quote
                if remove_chars:
                    del chars[scan]
                    continue
            elif ch == "\\":
                if remove_chars:
                    del chars[scan]  # the next character is taken literally
                else:
                    scan += 1
            elif ch == delim and not paren and not quote and not bracket:
                out.append("".join(chars[start:scan]))
                wasdelim = scan
                scan += 1
                ended = True
                break
            scan += 1
        if not ended:
            out.append("".join(chars[start:scan]))
    if scan < len(chars) or (scan > 0 and scan - 1 == wasdelim):
        out.append("".join(chars[scan:]))
    return out


def mset(app_data: str) -> dict[str, str]:
    """The variables ``MSet(app_data)`` sets (pairs without ``=`` are ignored, as Asterisk does)."""
    result: dict[str, str] = {}
    for pair in app_separate_args(app_data, ",", True, 99):
        parts = app_separate_args(pair, "=", False, 2)
        if len(parts) == 2:
            result[parts[0]] = parts[1]
    return result


def exec_mset(line: str) -> dict[str, str]:
    """What ``EXEC MSet ...`` sets, following res_agi's handle_exec (argv[2] only)."""
    argv = agi_parse_args(line)
    assert argv[0].upper() == "EXEC" and argv[1] == "MSet", argv
    return mset(argv[2] if len(argv) > 2 else "")


def answer_variables(lines: list[str]) -> dict[str, str]:
    """What privnum's routing answer sets, command by command as Asterisk runs them
    (``SET VARIABLE`` and ``EXEC MSet``), keyed by the plain names (inheritance prefix off).

    Checks the wire contract on the way: the ``SET VARIABLE`` commands come first and set only
    ``OUTSIDE_MSET`` variables, one ``EXEC MSet`` ends the answer and carries none of them."""
    from agi import channel_vars as cv

    out: dict[str, str] = {}
    for i, line in enumerate(lines):
        argv = agi_parse_args(line)
        if argv[:2] == ["SET", "VARIABLE"]:
            assert len(argv) == 4, argv
            name = argv[2].lstrip("_")
            assert name in cv.OUTSIDE_MSET, name
            assert argv[2] == cv.wire_name(name)
            out[name] = argv[3]
            continue
        assert i == len(lines) - 1, "EXEC MSet ends the answer"
        for name, value in exec_mset(line).items():
            plain = name.lstrip("_")
            assert plain not in cv.OUTSIDE_MSET, name
            assert name == cv.wire_name(plain), name
            out[plain] = value
    return out
