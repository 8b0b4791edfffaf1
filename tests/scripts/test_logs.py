"""log.format = text|json: the same fields on every line, privnum's and uvicorn's (its server
log and its access log), the request id of the request being served, numbers masked in URLs."""

from __future__ import annotations

import io
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scripts.logs import (
    JsonFormatter,
    TextFormatter,
    configure_logging,
    scrub_numbers,
)

PORT = 17602  # this worktree's range for private servers


def _record(name: str, msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    record.created = 1796300000.25  # a fixed moment, not today's
    return record


def test_json_lines_carry_the_same_fields_for_ours_and_uvicorns() -> None:
    context = [lambda: {"request_id": "r-1"}]
    ours = json.loads(JsonFormatter(context).format(
        _record("privnum.ami", "reconcile imported %d", 3, imported=3)))
    assert ours == {"ts": "2026-12-03T12:13:20.250Z", "level": "INFO", "logger": "privnum.ami",
                    "msg": "reconcile imported 3", "request_id": "r-1", "imported": 3}
    access = json.loads(JsonFormatter(context).format(_record(
        "uvicorn.access", '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
        "/v1/numbers/13912345678/virtual", "1.1", 200)))
    assert access["path"] == "/v1/numbers/139****5678/virtual"
    assert "13912345678" not in json.dumps(access)
    assert {k: access[k] for k in ("logger", "request_id", "method", "status")} == {
        "logger": "uvicorn.access", "request_id": "r-1", "method": "GET", "status": 200}


def test_text_lines_carry_them_as_key_value() -> None:
    line = TextFormatter([lambda: {"request_id": "r-2"}]).format(
        _record("privnum.serve", "stopped", calls=12, last_error="store down"))
    assert line == ('2026-12-03T12:13:20.250Z INFO privnum.serve stopped request_id=r-2 '
                    'calls=12 last_error="store down"')


def timestamp(record: logging.LogRecord) -> str:
    """A line's time as datetime reads it (what the formatters wrote before they kept each
    second's text)."""
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _stamped(formatter: TextFormatter, created: float) -> str:
    record = _record("privnum.agi", "call")
    record.created = created
    return formatter.format(record).split(" ", 1)[0]


@pytest.mark.parametrize("created", [
    1796300000.25, 1796300000.0, 1796300000.9994999, 1796300000.9995,
    1796300000.9999994, 1796300000.9999995,  # rounds into the next second
    1796300059.9999996,  # ... and the next minute
    1796300001.0000004, 1796300001.0000005, 86399.9999996, 0.0,
])
def test_line_times_read_as_datetime_rounds_them(created: float) -> None:
    """The time up to the second is formatted once per second; each line's text is still
    exactly datetime's, rounding into the next second included."""
    formatter = TextFormatter()
    record = _record("privnum.agi", "call")
    record.created = created
    assert _stamped(formatter, created) == timestamp(record)
    assert _stamped(formatter, created - 1.0) == timestamp(_at(created - 1.0))
    assert _stamped(formatter, created) == timestamp(record)  # the second's text again


def test_line_times_follow_the_clock_line_after_line() -> None:
    rnd = random.Random(5)
    formatter = TextFormatter()
    created = 1796300000.0
    for _ in range(5_000):
        created += rnd.choice([0.0, 0.0004, 0.0005, 0.3, 0.9999996, 1.0, 61.0])
        assert _stamped(formatter, created) == timestamp(_at(created))


def _at(created: float) -> logging.LogRecord:
    record = _record("privnum.agi", "call")
    record.created = created
    return record


@pytest.mark.parametrize(("text", "expected"), [
    ("/v1/numbers/+8613912345678/virtual", "/v1/numbers/139****5678/virtual"),
    ("/x?n=139%201234%205678&since=2026-12-03", "/x?n=139****5678&since=2026-12-03"),
    ("/v1/shops/shop-1/calls?order=o-1001", "/v1/shops/shop-1/calls?order=o-1001"),
])
def test_numbers_in_urls_are_masked(text: str, expected: str) -> None:
    assert scrub_numbers(text) == expected


@pytest.mark.usefixtures("restored_logging")
def test_configuring_twice_writes_each_line_once() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "text", stream)
    configure_logging("INFO", "json", stream)
    logging.getLogger("privnum.test").info("once")
    assert [json.loads(line)["msg"] for line in stream.getvalue().splitlines()] == ["once"]


def test_the_api_server_writes_json_only(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVNUM_")}
    env.update(PRIVNUM_DATA_DIR=str(tmp_path), PRIVNUM_LOG__FORMAT="json",
               PRIVNUM_API__PORT=str(PORT), PYTHONUNBUFFERED="1")
    cli = [sys.executable, "-m", "scripts.cli"]
    for args in (["db", "upgrade"], ["keys", "generate"]):
        subprocess.run([*cli, *args], env=env, check=True, capture_output=True, timeout=120)
    server = subprocess.Popen([*cli, "api"], env=env, stderr=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, text=True)
    try:
        for _ in range(200):  # until it listens (bounded; not a timing assertion)
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=5).close()
                break
            except OSError:
                time.sleep(0.1)
        request = urllib.request.Request(f"http://127.0.0.1:{PORT}/v1/numbers/13912345678/"
                                         "virtual", headers={"X-Request-Id": "trace-42"})
        with pytest.raises(urllib.error.HTTPError) as refused:  # no token: 401
            urllib.request.urlopen(request, timeout=5)
        refused.value.close()
        assert refused.value.headers["x-request-id"] == "trace-42"
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines()]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers
    assert any(name.startswith("privnum.") for name in loggers)  # ours, in the same format
    access = next(line for line in lines if line.get("request_id") == "trace-42")
    assert access["logger"] == "uvicorn.access" and access["status"] == 401
    assert access["path"] == "/v1/numbers/139****5678/virtual"
    assert "13912345678" not in err
