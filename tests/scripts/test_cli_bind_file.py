"""``privnum bind --file``: one result per row, good rows land whatever the others do, bad
rows say why (never a traceback), buyer numbers only masked; SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from tests.scripts.cli_helpers import Cli, one_line_error, write

MAIN = "+8613800138000"
BUYERS = [f"1391234{i:04d}" for i in range(40)]


def _ready(cli: Cli, pool_size: int) -> None:
    cli.ok("db", "upgrade")
    cli.ok("keys", "generate")
    cli.ok("shop", "enable", "s1", "--main-account", "boss", "--phone", MAIN,
           "--agreement", "v1")
    pool = write(cli.data_dir.parent / "pool.csv", "number,region\n" + "".join(
        f"+86170000{i:05d},BJ\n" for i in range(pool_size)))
    cli.ok("pool", "import", str(pool), "-q")


def test_bind_file_reports_every_row(cli: Cli, tmp_path: Path) -> None:
    _ready(cli, pool_size=30)  # rows run concurrently: as many numbers as orders of one A
    good = [f"o{i},{MAIN},{BUYERS[i]}" for i in range(30)]
    lines = ["order,caller,buyer,ttl", *(f"{g}," for g in good[:25]),
             f"o0,{MAIN},{BUYERS[0]},",  # the same order again: its binding comes back
             f"o-bad-ttl,{MAIN},{BUYERS[31]},5",
             f",{MAIN},{BUYERS[32]},",  # no order
             f"o-stranger,13900000000,{BUYERS[33]},",  # not an approved caller
             f"o-bad-buyer,{MAIN},12345,",
             f"{'o' * 65},{MAIN},{BUYERS[34]},",  # an order id longer than 64
             *(f"{g}," for g in good[25:])]
    orders = write(tmp_path / "orders.csv", "\n".join(lines) + "\n")
    result = cli("bind", "--file", orders, "--shop", "s1", "--json")
    assert result.exit_code == 3, result.stderr
    assert "Traceback" not in result.output
    report = json.loads(result.stdout)
    rows = {r["line"]: r for r in report["rows"]}
    assert len(rows) == len(lines) - 1
    assert (report["issued"], report["existing"], report["refused"]) == (30, 1, 5)
    outcome = {r["order"]: r["outcome"] for r in report["rows"] if r["order"] != "o0"}
    assert outcome["o-bad-ttl"] == "invalid_input" and "at least 60" in rows[28]["message"]
    assert rows[29]["outcome"] == "invalid_input" and "no order" in rows[29]["message"]
    assert outcome["o-stranger"] == "caller_not_approved"
    assert outcome["o-bad-buyer"] == "invalid_number"
    assert rows[32]["outcome"] == "invalid_input" and "invalid order id" in rows[32]["message"]
    first, again = rows[2], rows[27]  # concurrent: either may be the one that issued
    assert {first["outcome"], again["outcome"]} == {"issued", "existing"}
    assert again["binding_id"] == first["binding_id"]
    issued = [r for r in report["rows"] if r["outcome"] == "issued"]
    assert len({r["virtual_x"] for r in issued}) == 30  # one A: every order its own X
    assert all(r["buyer"].count("*") == 4 for r in issued)
    for buyer in BUYERS:
        assert buyer not in result.output
    assert "binding: 36/36 orders" in result.stderr  # the progress summary on stderr


def test_bind_file_table_and_errors(lite: Cli, tmp_path: Path) -> None:
    _ready(lite, pool_size=1)
    orders = write(tmp_path / "orders.csv",
                   f"shop,order,caller,buyer\ns1,o1,{MAIN},{BUYERS[0]}\n"
                   f"nope,o2,{MAIN},{BUYERS[1]}\ns1,o3,{MAIN},{BUYERS[2]}\n")
    result = lite("bind", "--file", orders, "--concurrency", "1")
    assert result.exit_code == 3
    out = result.stdout.splitlines()
    assert out[0].split("\t")[:4] == ["line", "shop", "order", "outcome"]
    assert [line.split("\t")[3] for line in out[1:]] == [
        "issued", "not_found", "pool_exhausted"]
    assert "1 issued, 0 already issued, 2 refused" in result.stderr
    one_line_error(lite("bind", "--file", tmp_path / "missing.csv"), "file not found")
    one_line_error(lite("bind", "--file", write(tmp_path / "h.csv", "order,who\n1,2\n")),
                   "unknown column(s) who", "missing column(s) caller, buyer")
    one_line_error(lite("bind", "--file", orders, "--order", "o9"), "--file takes", code=2)
    one_line_error(lite("bind", "--shop", "s1"), "missing --order, --caller, --buyer",
                   code=2)
