"""Log lines written in batches by a long-running service (``log.flush_seconds`` > 0; by
default every line is written at once).

A stream handler writes and flushes every line on its own: one ``write`` system call per line,
and the FastAGI service writes a line per call at INFO; under systemd each write also wakes
the journal. In the route handler the write and its flush were about a seventh of the line's
cost (``python -m bench handler_cpu --log-level INFO``). :class:`BatchingHandler` keeps INFO
and DEBUG lines for at most
``flush_seconds`` and writes what gathered in one call; a WARNING or worse is written at once,
after every line kept before it, so lines stay in order and a problem is never late. Closing
the handler (``logging.shutdown`` at exit, or configuring logging again) writes what is left.

Each write holds whole lines and at most ``PIPE_BUF`` bytes (a line longer than that goes
alone): the worker processes of ``privnum serve --workers`` share the parent's stderr, and a
write that size to a pipe is atomic, as one line's was, so lines of two workers never mix.

What a process killed outright (SIGKILL, the OOM killer) loses is the lines of its last
``flush_seconds``; the calls themselves are in the call log (attempts and CDRs), not in these
lines.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Iterator, Sequence
from typing import TextIO

MAX_PENDING_LINES = 2_000
"""Lines kept at most before they are written without waiting for the interval."""

ATOMIC_WRITE_BYTES = select.PIPE_BUF
"""The most one write holds (unless a single line is longer)."""


class BatchingHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes lines below WARNING at most ``flush_seconds`` late, in one
    write per batch (a thread of its own writes them when no other line comes)."""

    def __init__(self, stream: TextIO, flush_seconds: float,
                 max_pending: int = MAX_PENDING_LINES) -> None:
        if flush_seconds <= 0:
            raise ValueError("flush_seconds must be > 0 (use a plain StreamHandler for 0)")
        super().__init__(stream)
        self._pending: list[str] = []
        self._max_pending = max(1, max_pending)
        self._interval = flush_seconds
        self._closed = threading.Event()
        self._flusher = threading.Thread(target=self._flush_periodically, name="log-flusher",
                                         daemon=True)
        self._flusher.start()

    @property
    def pending(self) -> int:
        """Lines kept, not yet written."""
        return len(self._pending)

    def emit(self, record: logging.LogRecord) -> None:
        # Called with the handler's lock held (Handler.handle).
        try:
            self._pending.append(self.format(record))
            if record.levelno >= logging.WARNING or len(self._pending) >= self._max_pending:
                self._write()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Write every kept line now."""
        self.acquire()
        try:
            self._write()
        finally:
            self.release()

    def close(self) -> None:
        self._closed.set()
        try:
            self.flush()
        except (OSError, ValueError):
            pass  # the stream is gone (closed at interpreter exit): nothing can take them
        finally:
            super().close()

    def _write(self) -> None:
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        for chunk in chunks(lines, self.terminator, ATOMIC_WRITE_BYTES):
            self.stream.write(chunk)
            self.stream.flush()

    def _flush_periodically(self) -> None:
        while not self._closed.wait(self._interval):
            try:
                self.flush()
            except (OSError, ValueError):
                # A stream that cannot be written (a closed pipe): the next WARNING line
                # reports through logging's own error handling; keep trying.
                continue


def chunks(lines: Sequence[str], terminator: str, limit: int) -> Iterator[str]:
    """``lines``, each ended by ``terminator``, in order, as texts of whole lines of at most
    ``limit`` bytes (a longer line is a text of its own). A line that is not ASCII counts
    four bytes a character, the most UTF-8 takes."""
    batch: list[str] = []
    size = 0
    for line in lines:
        n = (len(line) if line.isascii() else 4 * len(line)) + len(terminator)
        if batch and size + n > limit:
            yield terminator.join(batch) + terminator
            batch, size = [], 0
        batch.append(line)
        size += n
    if batch:
        yield terminator.join(batch) + terminator
