from __future__ import annotations

from pathlib import Path

from tests.scripts.cli_helpers import Cli, one_line_error, write

MAIN = "+8613800138000"


def _enabled(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    cli.ok("shop", "enable", "s1", "--main-account", "boss", "--phone", "138 0013 8000",
           "--agreement", "2023.1", "--name", "Tea Shop")
    cli.ok("accounts", "add", "s1", "clerk", "--phone", "13900139001", "--reviewed")
    cli.ok("accounts", "add", "s1", "temp", "--phone", "13900139002")


def test_shop_lifecycle(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    out = cli.ok("shop", "enable", "s1", "--main-account", "boss", "--phone", "13800138000",
                 "--agreement", "2023.1", "--level", "L2")
    assert "shop s1: enabled" in out and MAIN in out and "2023.1" in out
    assert "already enabled, nothing changed" in cli.ok(
        "shop", "enable", "s1", "--main-account", "boss")
    show = cli.ok("shop", "show", "s1")
    assert "boss" in show and "L2" in show and "enabled" in show
    assert "disabled" in cli.ok("shop", "disable", "s1")
    assert "disabled" in cli.ok("shop", "show", "s1")
    assert "shop s1: enabled" in cli.ok("shop", "enable", "s1", "--main-account", "boss")
    assert "level L0" in cli.ok("shop", "set-level", "s1", "l0")
    listing = cli.ok("shop", "show")
    assert "s1" in listing and "L0" in listing


def test_shop_errors_are_one_line(lite: Cli) -> None:
    lite.ok("db", "upgrade")
    one_line_error(lite("shop", "enable", "s1", "--main-account", "boss",
                        "--agreement", "v1"), "main account's phone")
    one_line_error(lite("shop", "enable", "s1", "--main-account", "boss", "--phone", "123",
                        "--agreement", "v1"), "not a valid phone number")
    one_line_error(lite("shop", "enable", "s1", "--main-account", "boss",
                        "--phone", "010-12345678", "--agreement", "v1"), "not a mobile number")
    one_line_error(lite("shop", "enable", "bad id!", "--main-account", "boss",
                        "--phone", MAIN, "--agreement", "v1"), "invalid shop id")
    one_line_error(lite("shop", "show", "nope"), "shop nope not found")
    one_line_error(lite("shop", "disable", "nope"), "not found")
    lite.ok("shop", "enable", "s1", "--main-account", "boss", "--phone", MAIN,
            "--agreement", "v1")
    one_line_error(lite("shop", "set-level", "s1", "L9"), "invalid shop level")
    one_line_error(lite("shop", "enable", "s1", "--main-account", "other"),
                   "already has main account boss")


def test_accounts_and_callers(cli: Cli) -> None:
    _enabled(cli)
    accounts = cli.ok("accounts", "list", "s1")
    assert accounts.index("boss") < accounts.index("clerk") < accounts.index("temp")
    out = cli.ok("callers", "add", "s1", "139-0013-9001")
    assert "+8613900139001" in out and "approved" in out
    assert "pending" in cli.ok("callers", "add", "s1", "13900139002")
    listed = cli.ok("callers", "list", "s1")
    assert listed.index(MAIN) < listed.index("+8613900139001")
    assert "+8613900139002" not in cli.ok("callers", "list", "s1", "--status", "approved")
    one_line_error(cli("callers", "set-status", "s1", "13900139002", "approved"),
                   "has not passed the platform's review")
    cli.ok("accounts", "review", "temp")
    assert "approved" in cli.ok("callers", "set-status", "s1", "13900139002", "APPROVED")
    assert "disabled" in cli.ok("callers", "set-status", "s1", "13900139002", "disabled")
    assert "removed" in cli.ok("callers", "remove", "s1", "13900139002")
    assert "+8613900139002" not in cli.ok("callers", "list", "s1")


def test_caller_errors_are_one_line(lite: Cli) -> None:
    _enabled(lite)
    one_line_error(lite("callers", "remove", "s1", MAIN), "cannot be removed")
    one_line_error(lite("callers", "set-status", "s1", MAIN, "disabled"), "stays approved")
    one_line_error(lite("callers", "add", "s1", "13900139001", "--as", "clerk"),
                   "only the main account of shop s1")
    one_line_error(lite("callers", "add", "s1", "13500135000"), "not the phone of a sub-account")
    one_line_error(lite("callers", "add", "s1", "not-a-number"), "not a valid phone number")
    # A status that does not exist is a usage mistake: exit 2.
    one_line_error(lite("callers", "set-status", "s1", MAIN, "maybe"), "invalid caller status",
                   code=2)
    one_line_error(lite("callers", "list", "s1", "--status", "maybe"), "invalid caller status",
                   code=2)
    one_line_error(lite("callers", "list", "nope"), "shop nope not found")
    one_line_error(lite("callers", "remove", "s1", "13900139009"), "not a caller number")
    one_line_error(lite("accounts", "add", "s1", "x", "--phone", "13700137000", "--as", "clerk"),
                   "only the main account")
    one_line_error(lite("accounts", "add", "s1", "clerk", "--phone", "13700137000"),
                   "already exists")
    one_line_error(lite("accounts", "add", "nope", "x", "--phone", "13700137000"), "not found")
    one_line_error(lite("accounts", "review", "ghost"), "account ghost not found")


def test_batch_file_reports_each_row(cli: Cli, tmp_path: Path) -> None:
    _enabled(cli)
    batch = write(tmp_path / "batch.csv",
                  "number,account\n"
                  "139 0013 9001\n"
                  "13900139002\n"
                  "12345\n"
                  "010-12345678\n"
                  "13600136000\n"
                  f"{MAIN}\n"
                  '"13900139001\n')
    result = cli("callers", "batch", "s1", batch)
    assert result.exit_code == 3, result.stderr
    # Piped: one tab-separated row per line of the file (line, input, number, result).
    rows = {line.split("\t")[0]: line for line in result.stdout.splitlines()
            if line.split("\t")[0].isdigit()}
    assert "ok" in rows["2"]
    assert "not_reviewed" in rows["3"]
    assert "invalid_number" in rows["4"]
    assert "not_mobile" in rows["5"]
    assert "not_sub_account" in rows["6"]
    assert "duplicate" in rows["7"]
    assert "duplicate" in rows["8"]  # a stray quote is tolerated; line 2 added it already
    assert "1 added, 6 refused" in result.output
    assert "+8613900139001" in cli.ok("callers", "list", "s1")
    # Running the same file again lands nothing new and says why.
    again = cli("callers", "batch", "s1", batch)
    assert again.exit_code == 3 and "0 added, 7 refused" in again.output
    cli.ok("accounts", "review", "temp")
    good = write(tmp_path / "good.csv", "13900139002,temp\n")
    assert "1 added, 0 refused" in cli("callers", "batch", "s1", good).output


def test_batch_input_errors_are_one_line(lite: Cli, tmp_path: Path) -> None:
    _enabled(lite)
    one_line_error(lite("callers", "batch", "s1", tmp_path / "missing.csv"), "file not found")
    one_line_error(lite("callers", "batch", "s1", write(tmp_path / "e.csv", "number\n\n")),
                   "has no rows")
    one_line_error(lite("callers", "batch", "s1", write(tmp_path / "b.csv", b"\xff\xfe1\x00")),
                   "not UTF-8")
    one_line_error(lite("callers", "batch", "s1", write(tmp_path / "ok.csv", "13900139001\n"),
                        "--as", "clerk"), "only the main account")
