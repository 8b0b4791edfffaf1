"""The AGI wire format, pure: environment blocks, replies, command quoting. No I/O here.

What Asterisk 22 (``res/res_agi.c``) does, and what this module relies on:

* Environment: ``agi_<name>: <value>`` lines, then one empty line. Arguments of
  ``AGI(agi://host/script,a,b)`` arrive as ``agi_arg_1``, ``agi_arg_2`` ...
* Commands are read with ``fgets`` into a 2048-byte buffer: a line longer than 2047 bytes
  (newline included) is cut and its tail executed as a *second command*. Newlines obviously do
  the same. :func:`encode_command` refuses both.
* ``parse_args`` splits a command on blanks/tabs; ``"`` toggles quoting and ``\\`` makes the
  next character literal (inside or outside quotes). :func:`quote_arg` relies on exactly that.
* ``EXEC <app> <arg>`` passes the single AGI argument ``<arg>`` to the application unchanged
  (no ``${}`` substitution). ``MSet`` splits it with ``AST_STANDARD_APP_ARGS``: commas split
  unless inside ``()``, ``[]`` or ``"``; ``\\`` makes the next character literal and is removed;
  then each pair is split at its first ``=``. :func:`escape_app_arg` escapes for that.
* Replies: ``200 result=<r> [(data)] [key=value ...]``; ``510 Invalid or unknown command``;
  ``511 Command Not Permitted on a dead channel[ or intercept routine]``;
  ``520 Invalid command syntax.  Proper usage not available.`` or the multi-line
  ``520-Invalid command syntax.  Proper usage follows:`` ... ``520 End of proper usage.``
* ``HANGUP`` on a line of its own is an unprompted notification (FastAGI) that the channel hung
  up; it is not the reply to anything (see :data:`HANGUP_LINE`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from agi.errors import AgiProtocolError
from routing.call_ids import is_call_id, number_forms

HANGUP_LINE = "HANGUP"
# res_agi reads commands into ``char buf[2048]`` with fgets: 2047 bytes including the newline.
MAX_COMMAND_BYTES = 2047
# MSet declares 99 argument slots; the 99th receives the unparsed rest, so 98 pairs are safe.
MAX_MSET_PAIRS = 98
MAX_USAGE_LINES = 256

_ENV_LINE = re.compile(r"^(agi_[A-Za-z0-9_]+):(?: (.*))?$", re.DOTALL)
_ARG_KEY = re.compile(r"^agi_arg_([1-9][0-9]{0,3})$")
_REPLY_200 = re.compile(
    r"^200 result=(?P<result>\S*)(?: \((?P<data>.*)\))?(?P<extras>(?: [A-Za-z_]+=\S*)*)$",
    re.DOTALL,
)
_REPLY_OTHER = re.compile(r"^(?P<code>510|511|520)(?P<sep>[ -])(?P<text>.*)$", re.DOTALL)
_VERB = re.compile(r"^[A-Za-z]+(?: [A-Za-z]+)*$")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VAR_NAMES = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:,[A-Za-z_][A-Za-z0-9_]*)*\Z")
# C0 controls and DEL: NUL/CR/LF would end or split a command line; the rest have no business
# in a command and are refused rather than guessed at.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_APP_ARG_SPECIAL = re.compile(r'([\\",()\[\]])')


# --------------------------------------------------------------------------- environment


# Environment values that may hold a person's number: an id holding one is refused. (Not the
# dialled X: it is nobody's number, and an Asterisk epoch may happen to spell one.)
_NUMBER_KEYS = ("agi_callerid", "agi_rdnis")


@dataclass(frozen=True)
class AgiEnvironment:
    """One parsed environment block.

    ``uniqueid`` is ``agi_uniqueid`` when it is an id we may store and log (see
    ``routing.call_ids``), else a stand-in of our own (``pn-`` and 32 hex digits);
    ``uniqueid_refused`` says which. Read ids from here and :meth:`call_id`, never from ``env``.
    """

    env: Mapping[str, str]
    args: tuple[str, ...]
    script: str
    query: str
    uniqueid: str = ""
    uniqueid_refused: bool = False
    numbers: tuple[str, ...] = ()
    """The forms of the people's numbers in this environment (``routing.call_ids``)."""

    def call_id(self, value: str) -> str | None:
        """``value`` (e.g. the linkedid argument) if it may be stored and logged, else None."""
        if value == self.uniqueid and not self.uniqueid_refused:
            return value  # checked already, against the same numbers (the first channel's)
        return value if is_call_id(value, numbers=self.numbers) else None


def stand_in_id() -> str:
    """An id of our own for a call whose uniqueid we refuse (random: it must not be derived
    from text that may hold a phone number)."""
    return f"pn-{uuid.uuid4().hex}"


def parse_env_line(line: str) -> tuple[str, str]:
    """Split one ``agi_key: value`` line (terminator already removed)."""
    if line.endswith("\r"):
        line = line[:-1]
    match = _ENV_LINE.match(line)
    if match is None or "\x00" in line:
        raise AgiProtocolError("malformed AGI environment line")
    return match.group(1), match.group(2) or ""


def split_script(raw: str) -> tuple[str, str]:
    """``route?x=1`` -> (``route``, ``x=1``)."""
    script, _, query = raw.partition("?")
    return script, query


def build_environment(pairs: Iterable[tuple[str, str]]) -> AgiEnvironment:
    """Assemble an environment from parsed lines; duplicate keys or gaps in ``agi_arg_N`` fail."""
    env: dict[str, str] = {}
    numbered: dict[int, str] = {}
    for key, value in pairs:
        if key in env:
            raise AgiProtocolError("duplicate AGI environment key")
        env[key] = value
        arg = _ARG_KEY.match(key)
        if arg is not None:
            numbered[int(arg.group(1))] = value
    if sorted(numbered) != list(range(1, len(numbered) + 1)):
        raise AgiProtocolError("AGI arguments are not numbered 1..n")
    args = tuple(numbered[i] for i in range(1, len(numbered) + 1))
    if "agi_network_script" in env:
        raw_script = env["agi_network_script"]
    else:
        # AGI-script mode: agi_request is the script path (maybe with arguments appended by
        # older versions); the base name is the best route name available.
        raw_script = env.get("agi_request", "").rsplit("/", 1)[-1]
    script, query = split_script(raw_script)
    numbers = tuple(form for key in _NUMBER_KEYS for form in number_forms(env.get(key, "")))
    uniqueid = env.get("agi_uniqueid", "")
    refused = not is_call_id(uniqueid, numbers=numbers)
    return AgiEnvironment(env=MappingProxyType(env), args=args, script=script, query=query,
                          uniqueid=stand_in_id() if refused else uniqueid,
                          uniqueid_refused=refused, numbers=numbers)


def parse_env(lines: Iterable[str]) -> AgiEnvironment:
    """Parse the lines of one block (without the terminating empty line)."""
    return build_environment(parse_env_line(line) for line in lines)


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class AgiReply:
    """One reply. ``result``/``data``/``extras`` are set for ``200`` only."""

    code: int
    text: str
    result: str = ""
    data: str | None = None
    extras: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    usage: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def result_int(self) -> int | None:
        """``result`` as an integer, or None when it is not one (e.g. GET DATA digits ``*1#``)."""
        try:
            return int(self.result)
        except ValueError:
            return None


def parse_reply_line(line: str) -> AgiReply:
    """Parse a complete single-line reply (``200``, ``510``, ``511``, single-line ``520``)."""
    if line.endswith("\r"):
        line = line[:-1]
    ok = _REPLY_200.match(line)
    if ok is not None:
        extras = dict(item.split("=", 1) for item in ok.group("extras").split())
        return AgiReply(
            code=200,
            text=line,
            result=ok.group("result"),
            data=ok.group("data"),
            extras=MappingProxyType(extras),
        )
    other = _REPLY_OTHER.match(line)
    if other is None or other.group("sep") == "-":
        raise AgiProtocolError("unparseable AGI reply")
    return AgiReply(code=int(other.group("code")), text=line)


class ReplyAssembler:
    """Turns reply lines into :class:`AgiReply` values, handling multi-line ``520``.

    ``feed`` returns the reply once complete, else None. The ``HANGUP`` notification is not a
    reply; callers check :func:`is_hangup_line` first (unless :attr:`in_progress`).
    """

    def __init__(self, max_usage_lines: int = MAX_USAGE_LINES) -> None:
        self._max = max_usage_lines
        self._head: str | None = None
        self._usage: list[str] = []

    @property
    def in_progress(self) -> bool:
        return self._head is not None

    def feed(self, line: str) -> AgiReply | None:
        if line.endswith("\r"):
            line = line[:-1]
        if self._head is None:
            if line.startswith("520-"):
                self._head = line
                self._usage = []
                return None
            return parse_reply_line(line)
        if line.startswith("520 "):
            reply = AgiReply(code=520, text=self._head, usage=(*self._usage, line))
            self._head = None
            self._usage = []
            return reply
        if len(self._usage) >= self._max:
            raise AgiProtocolError("AGI 520 usage text too long")
        self._usage.append(line)
        return None


def is_hangup_line(line: str) -> bool:
    return line.rstrip("\r") == HANGUP_LINE


# --------------------------------------------------------------------------- commands


def _check_text(value: str, what: str) -> None:
    if _CONTROL.search(value):
        raise ValueError(f"{what} contains a control character (newline, CR, NUL, ...)")


def quote_arg(value: str) -> str:
    """Quote one command argument for res_agi's ``parse_args``: always one argument, verbatim."""
    _check_text(value, "AGI argument")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_command(verb: str, *args: str) -> str:
    """``build_command("SET VARIABLE", "X", "a b")`` -> ``SET VARIABLE "X" "a b"``."""
    if not _VERB.match(verb):
        raise ValueError("AGI command verb must be words of letters")
    return " ".join([verb, *(quote_arg(a) for a in args)])


def encode_command(line: str) -> bytes:
    """The bytes to send for ``line``: refuses anything that Asterisk would read as >1 command."""
    _check_text(line, "AGI command")
    data = line.encode("utf-8") + b"\n"
    if len(data) > MAX_COMMAND_BYTES:
        raise ValueError(f"AGI command longer than {MAX_COMMAND_BYTES - 1} bytes")
    if not line.strip():
        raise ValueError("empty AGI command")
    return data


def command_label(line: str) -> str:
    """A log-safe name for a command: its first word, plus the application for ``EXEC``."""
    words = line.split(None, 2)
    if not words:
        return "?"
    if words[0].upper() == "EXEC" and len(words) > 1:
        return f"EXEC {words[1].strip(chr(34))}"
    return words[0].upper()


def escape_app_arg(value: str) -> str:
    """Escape a value for an application argument parsed by ``AST_STANDARD_APP_ARGS``."""
    _check_text(value, "application argument")
    return _APP_ARG_SPECIAL.sub(r"\\\1", value)


def check_variable_name(name: str) -> str:
    """A channel-variable name we are willing to set (``__`` inheritance prefix allowed)."""
    if not _VAR_NAME.match(name):
        raise ValueError("invalid channel variable name")
    return name


def format_mset(variables: Mapping[str, str]) -> str:
    """One ``EXEC MSet "n1=v1,n2=v2"`` command setting all ``variables`` at once."""
    if not variables:
        raise ValueError("MSet needs at least one variable")
    if len(variables) > MAX_MSET_PAIRS:
        raise ValueError(f"MSet takes at most {MAX_MSET_PAIRS} variables")
    # All names checked by one match of their list; the count of commas catches a name that
    # holds one (the list would read it as two names).
    names = ",".join(variables)
    if names.count(",") != len(variables) - 1 or _VAR_NAMES.match(names) is None:
        raise ValueError("invalid channel variable name")
    values = "".join(variables.values())
    _check_text(values, "application argument")
    if _APP_ARG_SPECIAL.search(values) is None:
        # The usual answer (numbers, ids, codes): nothing to escape, one search for them all;
        # no quote or backslash in names or values either, so quoting adds only the quotes.
        return f'EXEC MSet "{",".join(map("=".join, variables.items()))}"'
    pairs = ",".join(f"{k}={escape_app_arg(v)}" for k, v in variables.items())
    return f"EXEC MSet {quote_arg(pairs)}"


def format_verbose(message: str, level: int = 1) -> str:
    """``VERBOSE "<message>" <level>``; control characters become spaces (free text)."""
    if not 1 <= level <= 4:
        raise ValueError("VERBOSE level must be 1..4")
    return f"VERBOSE {quote_arg(_CONTROL.sub(' ', message))} {level}"


def format_get_variable(name: str) -> str:
    return f"GET VARIABLE {quote_arg(check_variable_name(name))}"
