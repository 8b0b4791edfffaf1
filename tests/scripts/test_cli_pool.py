from __future__ import annotations

import csv
from pathlib import Path

from tests.scripts.cli_helpers import Cli, one_line_error, write

POOL = ("number,region\n"
        "17000000001,BJ\n"
        "+86 170 0000 0002,SH\n"
        "garbage,BJ\n"
        "17000000001,BJ\n"
        "17000000003\n")


def test_import_list_and_set_state(cli: Cli, tmp_path: Path) -> None:
    cli.ok("db", "upgrade")
    report = tmp_path / "problems.csv"
    result = cli("pool", "import", write(tmp_path / "pool.csv", POOL), "--report", report,
                 "--region", "GZ")
    assert result.exit_code == 3, result.stderr  # one row had an error
    assert "5 row(s) read: 3 imported, 1 duplicate(s), 1 error(s)" in result.stdout
    with report.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["line", "value", "problem"],
                    ["4", "garbage", "error: not a valid phone number"],
                    ["5", "+8617000000001", "duplicate: repeats line 2"]]
    listing = cli.ok("pool", "list")
    for number, region in (("+8617000000001", "BJ"), ("+8617000000002", "SH"),
                           ("+8617000000003", "GZ")):
        assert any(number in line and region in line for line in listing.splitlines())
    assert "retired" in cli.ok("pool", "set-state", "170-0000-0002", "retired")
    retired = cli.ok("pool", "list", "--state", "retired")
    assert "+8617000000002" in retired and "+8617000000001" not in retired
    # Piped: plain tab-separated columns (region, one per state, total).
    summary = [line for line in cli.ok("pool", "list", "--limit", "0").splitlines()
               if line.startswith("all\t")]
    assert summary and summary[0].split("\t")[1:] == ["2", "0", "1", "3"]
    # Importing the same file again: nothing new, duplicates are not fatal.
    again = cli("pool", "import", tmp_path / "pool.csv", "-q")
    assert "0 imported, 4 duplicate(s), 1 error(s)" in again.stdout


def test_clean_import_exits_zero(lite: Cli, tmp_path: Path) -> None:
    lite.ok("db", "upgrade")
    body = "number,region\n" + "".join(f"171{i:08d},R{i % 3}\n" for i in range(2500))
    out = lite.ok("pool", "import", write(tmp_path / "big.csv", body), "--batch-size", "500")
    assert "2500 row(s) read: 2500 imported, 0 duplicate(s), 0 error(s)" in out


def test_import_input_errors_are_one_line(lite: Cli, tmp_path: Path) -> None:
    lite.ok("db", "upgrade")
    one_line_error(lite("pool", "import", tmp_path / "missing.csv"), "file not found")
    one_line_error(lite("pool", "import", write(tmp_path / "nohdr.csv", "17000000001,BJ\n")),
                   "line 1: expected the header 'number,region'")
    one_line_error(lite("pool", "import", write(tmp_path / "empty.csv", "")), "file is empty")
    bad = write(tmp_path / "latin.csv", b"number,region\n17000000001,BJ\n17000000002,\xe9\n")
    one_line_error(lite("pool", "import", bad, "--batch-size", "1"), "line 3: not UTF-8")
    one_line_error(lite("pool", "set-state", "17000000009", "retired"), "not in the")
    one_line_error(lite("pool", "set-state", "17000000009", "gone"), "invalid pool state")
    one_line_error(lite("pool", "list", "--state", "gone"), "invalid pool state")
    one_line_error(lite("pool", "set-state", "xyz", "retired"), "not a phone number")


def test_700_numbers_by_default_and_only_700_when_configured(lite: Cli, tmp_path: Path) -> None:
    lite.ok("db", "upgrade")
    out = lite.ok("pool", "import", "-q", write(tmp_path / "p700.csv", (
        "number,region\n700000000000001,n700\n+86 700 0000 0000 0002,n700\n")))
    assert "2 imported" in out
    listing = lite.ok("pool", "list", "--region", "n700")
    assert "+86700000000000001" in listing and "+86700000000000002" in listing
    assert "quarantined" in lite.ok("pool", "set-state", "700000000000002", "quarantined")

    only_700 = write(tmp_path / "only700.toml", (
        '[pool.number_classes.CN]\nsegments = [{ prefix = "700", length = 15 }]\n'))
    mixed = write(tmp_path / "mixed.csv",
                  "number,region\n17000000001,a\n700000000000003,n700\n4001234567,a\n")
    result = lite("--config", only_700, "pool", "import", "-q", mixed,
                  "--report", tmp_path / "refused.csv")
    assert result.exit_code == 3 and "1 imported" in result.stdout
    with (tmp_path / "refused.csv").open(encoding="utf-8") as handle:
        assert list(csv.reader(handle))[1:] == [
            ["2", "17000000001", "error: a mobile number; region CN accepts 700 (15 digits)"],
            ["4", "4001234567",
             "error: a shared_cost number; region CN accepts 700 (15 digits)"]]

    bad = write(tmp_path / "bad.toml",
                '[pool.number_classes.ZZ]\nkinds = ["mobile"]\n')
    one_line_error(lite("--config", bad, "pool", "list"),
                   "invalid setting pool.number_classes", "unknown numbering region 'ZZ'")
    one_line_error(lite("pool", "list", env={"PRIVNUM_POOL__NUMBER_CLASSES":
                                             '{"CN": {"kinds": ["mobil"]}}'}),
                   "invalid setting pool.number_classes.CN.kinds.0")
