"""How commands print for scripts: JSON, plain untruncated columns when piped, progress lines
with rows/s and the time left in a log."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from scripts.cli_output import Column, print_record, print_rows, progress

TOKEN = "tok_" + "a" * 60  # longer than any terminal column would keep
ROWS = [{"id": TOKEN, "shop": "s1", "created": datetime(2026, 11, 28, 6, 0, tzinfo=UTC),
         "label": "for the\tplatform"}]
COLUMNS = [Column("id", "id"), Column("shop", "shop"), Column("created", "created"),
           Column("label", "label")]


def test_piped_rows_are_plain_tab_separated_and_whole() -> None:
    out = io.StringIO()
    print_rows(ROWS, COLUMNS, as_json=False, out=out)
    assert out.getvalue().splitlines() == [
        "id\tshop\tcreated\tlabel", f"{TOKEN}\ts1\t2026-11-28T06:00:00Z\tfor the platform"]


def test_json_rows_and_records_use_utc_z() -> None:
    out = io.StringIO()
    print_rows(ROWS, COLUMNS, as_json=True, out=out)
    assert json.loads(out.getvalue())[0]["created"] == "2026-11-28T06:00:00Z"
    out = io.StringIO()
    print_record({"shop": "s1", "updated": ROWS[0]["created"]}, as_json=False, out=out)
    assert out.getvalue() == "shop\ts1\nupdated\t2026-11-28T06:00:00Z\n"


def test_progress_in_a_log_ends_with_rows_per_second() -> None:
    err = io.StringIO()
    with progress("importing pool.csv", 1000, stream=err) as advance:
        advance(1000)
    (line,) = err.getvalue().splitlines()
    assert line.startswith("importing pool.csv: 1,000/1,000 rows, ")
    assert " rows/s, " in line and line.endswith(" s")
    quiet = io.StringIO()
    with progress("x", 10, quiet=True, stream=quiet) as advance:
        advance(10)
    assert quiet.getvalue() == ""
