"""Logging of privnum's processes: one format for every line, ours and uvicorn's (its server
log and its access log alike).

``log.format = "text"``: ``2026-12-03T10:00:00.123Z INFO privnum.ami message key=value``.
``log.format = "json"``: one JSON object per line with the same fields: ``ts`` (UTC, ``Z``),
``level``, ``logger``, ``msg``, then the context (``request_id`` while an HTTP request runs)
and the record's own fields (``extra=``; uvicorn's access log: ``client``, ``method``,
``path``, ``http_version``, ``status``), and ``exc`` for a traceback.

Configured once in the entry point; uvicorn must then run with ``log_config=None`` so that it
keeps these handlers instead of installing its own.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, TextIO

from routing.numbers import mask
from scripts.log_batching import BatchingHandler

LogFormat = Literal["text", "json"]
Context = Callable[[], Mapping[str, str]]
"""Fields of the current context (the request being served), read for every line."""

_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName", "color_message"}  # uvicorn's ANSI-coloured copy
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


# Seven or more digits, maybe with a leading + and spaces, dashes or dots between them (also
# URL-encoded): a phone number as far as a log line is concerned.
_NUMBER_LIKE = re.compile(r"(?:\+|%2[bB])?[0-9](?:(?:%20|[ .-])?[0-9]){6,}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def scrub_numbers(text: str) -> str:
    """``text`` with every phone-number-like run masked (``139****5678``): a client may put a
    buyer's number into a URL, and the access log writes URLs (dates stay readable)."""

    def masked(found: re.Match[str]) -> str:
        run = found[0]
        return run if _DATE.fullmatch(run) else mask(run.replace("%2B", "+").replace("%2b", "+"))

    return _NUMBER_LIKE.sub(masked, text)


def message(record: logging.LogRecord) -> str:
    text = record.getMessage()
    return scrub_numbers(text) if record.name == "uvicorn.access" else text


def fields(record: logging.LogRecord, context: Sequence[Context]) -> dict[str, Any]:
    """What a line says besides its message, in a stable order."""
    out: dict[str, Any] = {}
    for provider in context:
        out.update(provider())
    if record.name == "uvicorn.access" and isinstance(record.args, tuple) \
            and len(record.args) == len(_ACCESS_FIELDS):
        out.update(zip(_ACCESS_FIELDS, record.args, strict=True))
        out["path"] = scrub_numbers(str(out["path"]))
    attrs = vars(record)
    # The usual record has none of its own: one set difference, not a test per attribute.
    if attrs.keys() - _RECORD_ATTRS:
        out.update((k, v) for k, v in attrs.items()
                   if k not in _RECORD_ATTRS and not k.startswith("_"))
    return out


class Stamps:
    """A line's time, UTC to the millisecond (``2026-12-03T10:00:00.123Z``), as
    ``datetime.fromtimestamp(record.created, UTC)`` reads it; the date and time up to the
    second formatted once per second: with a line per call at INFO, ``strftime`` for each
    line was a fifth of its cost."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        # (second, its text): one attribute, so a thread formatting meanwhile reads a
        # matching pair, the old or the new
        self._last: tuple[float, str] = (math.nan, "")

    def __call__(self, record: logging.LogRecord) -> str:
        # Rounded to the microsecond as datetime.fromtimestamp rounds (half to even), so the
        # text is datetime's to the digit, also where rounding carries into the second.
        fraction, second = math.modf(record.created)
        micros = round(fraction * 1e6)
        if micros >= 1_000_000:
            second += 1
            micros -= 1_000_000
        elif micros < 0:
            second -= 1
            micros += 1_000_000
        last_second, prefix = self._last
        if second != last_second:
            prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            self._last = (second, prefix)
        return f"{prefix}{micros // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    def __init__(self, context: Sequence[Context] = ()) -> None:
        super().__init__()
        self.context = tuple(context)
        self._stamp = Stamps()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"ts": self._stamp(record), "level": record.levelname,
                                "logger": record.name, "msg": message(record)}
        line.update(fields(record, self.context))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, context: Sequence[Context] = ()) -> None:
        super().__init__()
        self.context = tuple(context)
        self._stamp = Stamps()

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={_text(v)}" for k, v in fields(record, self.context).items()
                         if not (record.name == "uvicorn.access" and k in _ACCESS_FIELDS))
        line = f"{self._stamp(record)} {record.levelname} {record.name} {message(record)}"
        line = f"{line} {extra}" if extra else line
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if not text or " " in text or '"' in text \
        else text


# Neither format shows a line's source file, thread or process: not finding them saves a
# record a third of its making (the logging HOWTO's "Optimization"), and the call path makes
# one per call. The logging module's own switches, for the whole process.
_RECORD_LOOKUPS: Mapping[str, object] = MappingProxyType({
    "_srcfile": None, "logThreads": False, "logProcesses": False,
    "logMultiprocessing": False})


def configure_logging(level: str, fmt: LogFormat, stream: TextIO,
                      context: Sequence[Context] = (), flush_seconds: float = 0.0) -> None:
    """One handler on the root logger writing ``fmt`` to ``stream``; uvicorn's loggers write
    through it too. Calling it again replaces the handler (no duplicate lines; the old one
    writes what it kept first). ``flush_seconds`` > 0: lines below WARNING are written in
    batches at most that late (``scripts.log_batching``); 0: each line at once."""
    formatter: logging.Formatter = (JsonFormatter(context) if fmt == "json"
                                    else TextFormatter(context))
    handler: logging.StreamHandler[TextIO] = (
        BatchingHandler(stream, flush_seconds) if flush_seconds > 0
        else logging.StreamHandler(stream))
    handler.setFormatter(formatter)
    handler.set_name("privnum")
    for name, value in _RECORD_LOOKUPS.items():
        setattr(logging, name, value)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "privnum"]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    for name in _UVICORN:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


@contextmanager
def logging_restored() -> Iterator[None]:
    """Logging as it was before the block, for code that calls :func:`configure_logging`
    inside a process it does not own (a bench, a test): the root logger's handlers and level
    (a handler added meanwhile is closed, writing what it kept) and the logging module's
    record switches."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    switches = {name: getattr(logging, name) for name in _RECORD_LOOKUPS}
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        for name, value in switches.items():
            setattr(logging, name, value)
