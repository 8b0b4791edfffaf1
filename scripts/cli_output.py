"""How ``privnum`` commands print, so that scripts can rely on it.

A list or a record has one shape and three renderings:

* ``--json``: JSON on stdout and nothing else there (a list of objects for a list, one
  object for a show); times are UTC with ``Z``, numbers are numbers.
* stdout is a terminal: a table for people (long cells may fold to fit the width).
* stdout is a pipe or a file: plain tab-separated columns with a header line, no cell cut,
  no colour, so ``cut``/``awk`` see every token id and number whole.

Exit codes are the same for every command (:class:`ExitCode`, listed by ``privnum --help``).
Long operations report progress on stderr with rows per second, and an ETA when the total is
known (:func:`progress`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import Enum, IntEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # one line on stderr says what
    USAGE = 2  # a mistake in the command line: unknown option, bad value
    PARTIAL = 3  # a batch ran, but some rows were refused (each one reported)


EXIT_CODES_HELP = ("Exit codes: 0 done; 1 failed (one line on stderr says why); 2 usage "
                   "mistake; 3 batch done but some rows refused (each one reported).")

JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print JSON (for scripts): times in UTC with Z, nothing else on stdout.")]


@dataclasses.dataclass(frozen=True)
class Column:
    key: str
    title: str


def utc_z(moment: datetime) -> str:
    """A moment as machine formats write it: ISO 8601, UTC, ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_z(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def print_json(value: Any, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(jsonable(value), ensure_ascii=False, indent=2) + "\n")


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return utc_z(value) if value.tzinfo else value.isoformat(sep=" ")
    if isinstance(value, Enum):
        return str(value.value)
    return " ".join(str(value).split()) if isinstance(value, str) else str(value)


def print_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *,
               as_json: bool, title: str | None = None, out: TextIO | None = None) -> None:
    """A list: JSON objects (every key of every row), a table, or plain columns."""
    stream = out or sys.stdout
    if as_json:
        print_json(list(rows), stream)
        return
    if not is_terminal(stream):
        if title:  # for a person watching; stdout stays the columns alone
            sys.stderr.write(title + "\n")
        stream.write("\t".join(c.title for c in columns) + "\n")
        for row in rows:
            stream.write("\t".join(_cell(row.get(c.key)).replace("\t", " ")
                                   for c in columns) + "\n")
        return
    table = Table(*(c.title for c in columns), title=title)
    for row in rows:
        table.add_row(*(Text(_cell(row.get(c.key))) for c in columns))
    Console(file=stream).print(table)


def print_record(record: Mapping[str, Any], *, as_json: bool, labels: Mapping[str, str]
                 | None = None, out: TextIO | None = None) -> None:
    """One record: a JSON object, or ``label<TAB>value`` lines (a two-column table on a
    terminal)."""
    stream = out or sys.stdout
    if as_json:
        print_json(record, stream)
        return
    names = labels or {k: k for k in record}
    if not is_terminal(stream):
        for key, label in names.items():
            stream.write(f"{label}\t{_cell(record.get(key))}\n")
        return
    table = Table(show_header=False)
    for key, label in names.items():
        table.add_row(label, Text(_cell(record.get(key))))
    Console(file=stream).print(table)


# ---- progress --------------------------------------------------------------------------------


class RateColumn(ProgressColumn):
    """Rows per second since the start."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.0f} {self.unit}/s")


@contextmanager
def progress(what: str, total: int | None, *, unit: str = "rows", quiet: bool = False,
             stream: TextIO | None = None) -> Iterator[Callable[[int], None]]:
    """Yields ``advance_to(done)``. On a terminal: a live bar with done/total, rows per
    second and the time left (when ``total`` is known). Elsewhere (a log, a pipe): a line now
    and then and a summary line at the end. ``quiet``: nothing."""
    err = stream or sys.stderr
    if quiet:
        yield lambda _done: None
        return
    started = time.monotonic()
    if is_terminal(err):
        columns: list[ProgressColumn] = [TextColumn("{task.description}")]
        if total:
            columns += [BarColumn(), MofNCompleteColumn(), RateColumn(unit), TimeRemainingColumn()]
        else:
            columns += [SpinnerColumn(), TextColumn(f"{{task.completed:,}} {unit}"),
                        RateColumn(unit), TimeElapsedColumn()]
        with Progress(*columns, console=Console(file=err), transient=False) as bar:
            task = bar.add_task(what, total=total or None)
            yield lambda done: bar.update(task, completed=done)
        return
    state = {"shown_at": started}
    done_so_far = [0]

    def track(done: int) -> None:
        done_so_far[0] = done
        now = time.monotonic()
        if now - state["shown_at"] >= 10.0:  # a log line every ten seconds at most
            state["shown_at"] = now
            err.write(_line(what, done, total, now - started, unit) + "\n")
            err.flush()

    yield track
    err.write(_line(what, done_so_far[0], total, time.monotonic() - started, unit,
                    final=True) + "\n")


def _line(what: str, done: int, total: int | None, elapsed: float, unit: str, *,
          final: bool = False) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    count = f"{done:,}/{total:,}" if total else f"{done:,}"
    text = f"{what}: {count} {unit}, {rate:,.0f} {unit}/s"
    if final:
        return f"{text}, {elapsed:.1f} s"
    if total and rate > 0:
        return f"{text}, about {max(0.0, (total - done) / rate):.0f} s left"
    return text
