"""Log lines in batches: kept below WARNING, written in order, none lost at close."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import cli_serve
from scripts.log_batching import ATOMIC_WRITE_BYTES, BatchingHandler, chunks
from scripts.logs import configure_logging
from scripts.settings import Settings


class CountingStream(io.StringIO):
    """A stream that keeps its writes (each a system call on a real one)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    @property
    def writes(self) -> int:
        return len(self.texts)

    def write(self, text: str) -> int:
        self.texts.append(text)
        return super().write(text)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("privnum.test.batching")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def _attach(log: logging.Logger, flush_seconds: float, max_pending: int = 2_000
            ) -> tuple[BatchingHandler, CountingStream]:
    stream = CountingStream()
    handler = BatchingHandler(stream, flush_seconds, max_pending)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.addHandler(handler)
    return handler, stream


def test_lines_below_warning_wait_and_go_out_together(logger: logging.Logger) -> None:
    handler, stream = _attach(logger, flush_seconds=3600)  # the flusher never runs here
    for i in range(3):
        logger.info("call %d", i)
    logger.debug("detail")
    assert stream.getvalue() == "" and handler.pending == 4
    handler.flush()
    assert stream.getvalue() == "INFO call 0\nINFO call 1\nINFO call 2\nDEBUG detail\n"
    assert stream.writes == 1 and handler.pending == 0


@pytest.mark.parametrize("level", [logging.WARNING, logging.ERROR, logging.CRITICAL])
def test_a_warning_goes_out_at_once_after_the_lines_before_it(logger: logging.Logger,
                                                              level: int) -> None:
    handler, stream = _attach(logger, flush_seconds=3600)
    logger.info("call 1")
    logger.log(level, "store down")
    name = logging.getLevelName(level)
    assert stream.getvalue() == f"INFO call 1\n{name} store down\n"
    assert handler.pending == 0
    logger.info("call 2")
    assert handler.pending == 1  # batching again after it


def test_a_full_batch_goes_out_without_waiting(logger: logging.Logger) -> None:
    handler, stream = _attach(logger, flush_seconds=3600, max_pending=10)
    for i in range(25):
        logger.info("call %d", i)
    assert stream.writes == 2 and handler.pending == 5
    assert stream.getvalue().splitlines() == [f"INFO call {i}" for i in range(20)]


def test_the_flusher_writes_kept_lines_when_no_other_line_comes(
        logger: logging.Logger) -> None:
    _, stream = _attach(logger, flush_seconds=0.05)
    logger.info("the only call")
    deadline = time.monotonic() + 10  # generous: a shared box may stall the thread
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.getvalue() == "INFO the only call\n"


def test_close_writes_what_is_left_and_stops_the_flusher(logger: logging.Logger) -> None:
    handler, stream = _attach(logger, flush_seconds=3600)
    logger.info("last call")
    logger.removeHandler(handler)
    handler.close()
    assert stream.getvalue() == "INFO last call\n"
    handler._flusher.join(timeout=10)
    assert not handler._flusher.is_alive()


def test_a_stream_that_fails_reports_through_logging_and_loses_no_later_line(
        logger: logging.Logger, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    handler, stream = _attach(logger, flush_seconds=3600)
    monkeypatch.setattr(logging, "raiseExceptions", True)
    real_write = stream.write
    fail = {"next": True}

    def write(text: str) -> int:
        if fail["next"]:
            fail["next"] = False
            raise OSError("pipe closed")
        return real_write(text)

    monkeypatch.setattr(stream, "write", write)
    logger.warning("first")
    assert "OSError: pipe closed" in capsys.readouterr().err  # logging's own report
    logger.warning("second")
    assert stream.getvalue() == "WARNING second\n"
    assert handler.pending == 0


def test_no_flush_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        BatchingHandler(io.StringIO(), 0)


@pytest.mark.usefixtures("restored_logging")
def test_configuring_again_writes_the_old_handlers_lines_first() -> None:
    first, second = CountingStream(), CountingStream()
    configure_logging("INFO", "text", first, flush_seconds=3600)
    logging.getLogger("privnum.route").info("call one")
    assert first.getvalue() == ""
    configure_logging("INFO", "text", second, flush_seconds=0)
    assert first.getvalue().endswith("INFO privnum.route call one\n")
    logging.getLogger("privnum.route").info("call two")
    assert second.getvalue().endswith("INFO privnum.route call two\n")  # at once


def test_each_write_is_whole_lines_of_at_most_pipe_buf_bytes(logger: logging.Logger) -> None:
    """Workers share the parent's stderr: a write of at most PIPE_BUF bytes to a pipe is
    atomic, so two workers' lines never mix, as when each line was a write of its own."""
    handler, stream = _attach(logger, flush_seconds=3600)
    for i in range(400):
        logger.info("call uniqueid=%d %s", i, "x" * (i % 97))
    logger.info("%s", "long " * 2_000)  # one line longer than PIPE_BUF
    logger.info("店铺 %s", "订单" * 900)  # not ASCII: 3 bytes a character in UTF-8
    logger.info("after")
    handler.flush()
    assert stream.writes > 1
    for text in stream.texts:
        assert text.endswith("\n")
        assert len(text.encode()) <= ATOMIC_WRITE_BYTES or text.count("\n") == 1
    lines = stream.getvalue().splitlines()
    assert len(lines) == 403 and lines[0] == "INFO call uniqueid=0 "
    assert lines[400].startswith("INFO long long") and lines[-1] == "INFO after"


@pytest.mark.parametrize("limit", [1, 10, 64, 4096])
def test_chunks_keep_every_line_once_and_in_order(limit: int) -> None:
    lines = [f"line {i} " + "y" * (i * 7 % 50) for i in range(200)] + ["é" * 30, ""]
    texts = list(chunks(lines, "\n", limit))
    assert "".join(texts) == "".join(f"{line}\n" for line in lines)
    for text in texts:
        assert len(text.encode()) <= limit or text.count("\n") == 1


@pytest.mark.parametrize(("flush_seconds", "batched", "expected"), [
    (0.0, True, logging.StreamHandler),  # the default: every line at once
    (0.2, True, BatchingHandler),  # a service, on request
    (0.2, False, logging.StreamHandler),  # privnum agi: one call, then exit
])
@pytest.mark.usefixtures("restored_logging")
def test_the_services_batch_only_on_request_and_privnum_agi_never(
        tmp_path: Path, flush_seconds: float, batched: bool,
        expected: type[logging.Handler]) -> None:
    settings = Settings(data_dir=tmp_path, log={"flush_seconds": flush_seconds})
    cli_serve.configure_logging(settings, CountingStream(), batched=batched)
    (ours,) = [h for h in logging.getLogger().handlers if h.get_name() == "privnum"]
    assert type(ours) is expected


def test_flush_seconds_defaults_to_every_line_at_once(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).log.flush_seconds == 0.0
