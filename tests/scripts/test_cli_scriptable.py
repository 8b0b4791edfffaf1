"""The CLI for scripts and operators: --json on lists and shows, untruncated plain columns when
piped, one set of exit codes (0 ok, 1 failure, 2 usage, 3 partial batch) listed in --help, an
unknown shop is "not found" on every command, shop enable says what it ignored, progress with
rows/s, call times in the shop's time zone (UTC Z in JSON)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from binding_store.call_log import CallLogStore
from binding_store.db import Database
from binding_store.models import CallAttempt
from tests.fixtures.ami.scenario import SHOP, UID_BRIDGED_9001, cdr_events, seed
from tests.scripts.cli_helpers import Cli, one_line_error, write

MAIN = "13800138000"
CLERK = "13900139001"


@pytest.fixture
def shop1(lite: Cli) -> Cli:
    lite.ok("db", "upgrade")
    lite.ok("keys", "generate")
    lite.ok("shop", "enable", "s1", "--main-account", "boss", "--phone", MAIN,
            "--agreement", "v1")
    lite.ok("accounts", "add", "s1", "clerk", "--phone", CLERK, "--reviewed")
    return lite


NOT_FOUND = [
    ("shop", "show", "nosuch"),
    ("shop", "disable", "nosuch"),
    ("shop", "set-level", "nosuch", "L2"),
    ("shop", "set-timezone", "nosuch", "UTC"),
    ("accounts", "list", "nosuch"),
    ("accounts", "add", "nosuch", "x1", "--phone", "13700137000"),
    ("callers", "list", "nosuch"),
    ("callers", "add", "nosuch", CLERK),
    ("callers", "remove", "nosuch", CLERK),
    ("callers", "set-status", "nosuch", CLERK, "approved"),
    ("calls", "list", "--shop", "nosuch"),
    ("bind", "--shop", "nosuch", "--order", "o1", "--caller", MAIN, "--buyer", "13712345678"),
]
# Not tokens: a main account's token may be issued (and listed) before its shop exists.


@pytest.mark.parametrize("args", NOT_FOUND, ids=lambda a: " ".join(a[:2]))
def test_an_unknown_shop_is_not_found_on_every_command(shop1: Cli, args: tuple[str, ...]
                                                       ) -> None:
    one_line_error(shop1(*args), "shop nosuch not found")


def test_lists_and_shows_speak_json(shop1: Cli) -> None:
    shop1.ok("callers", "add", "s1", CLERK)
    shop = json.loads(shop1.ok("shop", "show", "s1", "--json"))
    assert (shop["id"], shop["service"], shop["timezone"]) == ("s1", "enabled", "Asia/Shanghai")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", shop["updated_at"])
    assert [s["id"] for s in json.loads(shop1.ok("shop", "show", "--json"))] == ["s1"]
    accounts = json.loads(shop1.ok("accounts", "list", "s1", "--json"))
    assert [(a["id"], a["role"]) for a in accounts] == [("boss", "main"), ("clerk", "sub")]
    callers = json.loads(shop1.ok("callers", "list", "s1", "--json"))
    assert {c["number"] for c in callers} == {"+86" + MAIN, "+86" + CLERK}
    pool = json.loads(shop1.ok("pool", "list", "--json"))
    assert pool["counts"][-1]["region"] == "all" and pool["numbers"] == []
    assert json.loads(shop1.ok("calls", "list", "--shop", "s1", "--json")) == []
    shop1.ok("tokens", "issue", "--shop", "s1", "--account", "boss", "--label", "erp")
    tokens = json.loads(shop1.ok("tokens", "list", "--json"))
    assert [(t["kind"], t["shop"], t["label"], t["state"]) for t in tokens] == [
        ("account", "s1", "erp", "active")]


def test_webhook_lists_speak_json(shop1: Cli) -> None:
    shop1.ok("webhooks", "add", "http://127.0.0.1:9/hook", "--events", "call.*",
             "--shop", "s1")
    subs = json.loads(shop1.ok("webhooks", "list", "--json"))
    assert [(s["url"], s["shop"], s["state"]) for s in subs] == [
        ("http://127.0.0.1:9/hook", "s1", "active")]
    assert "secret" not in subs[0]
    assert json.loads(shop1.ok("webhooks", "deliveries", subs[0]["id"], "--json")) == []
    piped = shop1.ok("webhooks", "list").splitlines()
    assert piped[0].split("\t")[0] == "id" and piped[1].split("\t")[0] == subs[0]["id"]


def test_piped_columns_are_plain_and_untruncated(shop1: Cli) -> None:
    shop1.ok("tokens", "issue", "--shop", "s1", "--account", "boss")
    token_id = json.loads(shop1.ok("tokens", "list", "--json"))[0]["id"]
    lines = shop1.ok("tokens", "list").splitlines()
    assert lines[0].split("\t") == ["id", "kind", "shop", "account", "shops", "label", "created",
                                      "state"]
    assert lines[1].split("\t")[0] == token_id  # whole, for 'tokens revoke'
    assert "│" not in "\n".join(lines) and "…" not in "\n".join(lines)
    revoked = shop1("tokens", "revoke", lines[1].split("\t")[0])
    assert revoked.exit_code == 0, revoked.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (("calls", "list", "--shop", "s1", "--outcome", "bogus"), "--outcome: 'bogus' is none of"),
    (("calls", "list", "--shop", "s1", "--since", "yesterday"), "--since: not a date"),
    (("calls", "list", "--shop", "s1", "--caller", "not-a-phone"), "--caller: not a phone"),
    (("callers", "list", "s1", "--status", "maybe"), "invalid caller status"),
])
def test_usage_mistakes_exit_2(shop1: Cli, args: tuple[str, ...], expected: str) -> None:
    one_line_error(shop1(*args), expected, code=2)


def test_exit_codes_are_listed_in_help(lite: Cli) -> None:
    out = " ".join(lite.ok("--help").split())
    assert ("Exit codes: 0 done; 1 failed (one line on stderr says why); 2 usage mistake; 3 "
            "batch done but some rows refused (each one reported).") in out


def test_a_wrong_mode_is_a_usage_mistake_as_the_console_script_says_it() -> None:
    done = subprocess.run([sys.executable, "-m", "scripts.cli", "asterisk", "render", "--out",
                           "x", "--mode", "partial"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("error: Invalid value for '--mode'") and \
        done.stderr.count("\n") == 1


def test_reconcile_with_a_malformed_line_exits_3(shop1: Cli, tmp_path: Path) -> None:
    # An hour ago: inside the reconcile's look-back whatever today's date is.
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    end = (datetime.now(UTC) - timedelta(minutes=59)).strftime("%Y-%m-%d %H:%M:%S")
    good = ('"","13800000001","9001","privnum-inbound","","PJSIP/a-1","","Hangup",'
            f'"{start}","","{end}","5","0","NO ANSWER","DOCUMENTATION",'
            '"pbx-1.1","pbx-1.1","1","","s1","o1","+869001","caller_not_authorized",'
            '"merchant","13800000001"\n')
    csv_file = write(tmp_path / "cdr.csv", good + '"not","a","cdr"\n')
    done = shop1("cdr", "reconcile", "--file", csv_file, "--system-name", "pbx")
    assert done.exit_code == 3, done.output
    assert "skipped" in done.stdout and "imported 1 call record(s)" in done.stdout


def test_shop_enable_says_what_it_ignored(shop1: Cli) -> None:
    again = shop1("shop", "enable", "s1", "--main-account", "boss", "--phone", "13800138001",
                  "--agreement", "v2", "--level", "L3", "--timezone", "Asia/Tokyo")
    assert again.exit_code == 0, again.stderr
    assert "shop s1: already enabled, nothing changed" in again.stdout
    ignored = [line for line in again.stderr.splitlines() if line.startswith("ignored: ")]
    assert [line.split(" (")[0] for line in ignored] == [
        "ignored: main phone", "ignored: agreement version 'v2'", "ignored: level L3",
        "ignored: time zone Asia/Tokyo"]
    same = json.loads(shop1.ok("shop", "enable", "s1", "--main-account", "boss", "--phone",
                               MAIN, "--agreement", "v1", "--json"))
    assert same["changed"] is False and same["ignored"] == []  # the same values: nothing


def test_pool_import_progress_counts_rows_with_a_rate(shop1: Cli, tmp_path: Path) -> None:
    rows = "".join(f"+86170{i:08d},bj\n" for i in range(1, 1201))
    done = shop1("pool", "import", write(tmp_path / "pool.csv", "number,region\n" + rows))
    assert done.exit_code == 0, done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("importing pool.csv")]
    assert re.fullmatch(r"importing pool\.csv: 1,200/1,200 rows, [\d,]+ rows/s, [\d.]+ s", line)


def _recent_calls(url: str) -> datetime:
    """The recorded session's CDRs moved to an hour ago (so they are inside the call log's
    window whatever today's date is); returns the first call's new start."""
    events = cdr_events()
    shift = timedelta(seconds=int((datetime.now(UTC) - timedelta(hours=1)
                                   - min(e.start for e in events)).total_seconds()))

    async def fill() -> None:
        db = Database(url)
        await seed(db)
        await CallLogStore(db).write_batch([replace(
            e, start=e.start + shift, end=e.end + shift,
            answer=e.answer + shift if e.answer else None) for e in events])
        await db.dispose()

    asyncio.run(fill())
    return min(e.start for e in events) + shift


def test_call_times_are_in_the_shops_zone_and_utc_in_json(lite: Cli) -> None:
    lite.ok("db", "upgrade")
    first = _recent_calls(lite.database_url)
    assert "time zone Asia/Tokyo" in lite.ok("shop", "set-timezone", SHOP, "Asia/Tokyo")
    table = lite("calls", "list", "--shop", SHOP)
    assert table.exit_code == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.startswith("start (Asia/Tokyo)\torder\t")
    tokyo = (first + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S")
    assert rows[-1].split("\t")[0] == tokyo  # the oldest call, in Tokyo time
    assert "Asia/Tokyo" in table.stderr  # the title names the zone
    utc = lite.ok("calls", "list", "--shop", SHOP, "--utc").splitlines()
    assert utc[0].startswith("start (UTC)") and utc[-1].split("\t")[0] == first.strftime(
        "%Y-%m-%d %H:%M:%S")
    data = json.loads(lite.ok("calls", "list", "--shop", SHOP, "--json"))
    assert data[-1]["start"] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert all(d["order_link"] is None for d in data)  # no template configured: no link
    assert "link" not in header
    back = lite.ok("shop", "set-timezone", SHOP, "default")
    assert "time zone Asia/Shanghai (the default)" in back


def test_an_extension_binding_shows_its_display_and_dial_string(shop1: Cli, tmp_path: Path
                                                                ) -> None:
    shop1.ok("pool", "import", write(tmp_path / "pool.csv", "number,region\n17100000009,\n"),
             "--quiet")
    shop1.ok("pool", "mode", "17100000009", "--extension", "2")
    got = json.loads(shop1.ok("bind", "--shop", "s1", "--order", "o-ext", "--caller", MAIN,
                              "--buyer", "13712345678", "--mode", "extension", "--json"))
    ext = got["extension"]
    assert (got["virtual_x"], got["display"], got["dial_string"]) == (
        "+8617100000009", f"171 0000 0009 ext. {ext}", f"17100000009,{ext}")
    text = shop1.ok("bind", "--shop", "s1", "--order", "o-ext", "--caller", MAIN,
                    "--buyer", "13712345678")
    assert f"shown as 171 0000 0009 ext. {ext}  dial string 17100000009,{ext}" in text


def test_calls_list_shows_the_call_rule_mark(lite: Cli) -> None:
    lite.ok("db", "upgrade")
    events = cdr_events()
    shift = timedelta(seconds=int((datetime.now(UTC) - timedelta(hours=1)
                                   - min(e.start for e in events)).total_seconds()))
    graced = next(e for e in events if e.uniqueid == UID_BRIDGED_9001)

    async def fill() -> None:
        db = Database(lite.database_url)
        await seed(db)
        async with db.session() as s:  # the 9001 callback: let through in the grace window
            await s.execute(update(CallAttempt).where(CallAttempt.uniqueid == UID_BRIDGED_9001)
                            .values(mark="grace", at=graced.start + shift))
            await s.commit()
        await CallLogStore(db).write_batch([replace(
            e, start=e.start + shift, end=e.end + shift,
            answer=e.answer + shift if e.answer else None) for e in events])
        await db.dispose()

    asyncio.run(fill())
    data = json.loads(lite.ok("calls", "list", "--shop", SHOP, "--json"))
    assert sorted(d["mark"] or "" for d in data) == [""] * (len(data) - 1) + ["grace"]
    header, *rows = lite.ok("calls", "list", "--shop", SHOP).splitlines()
    column = header.split("\t").index("mark")
    assert sorted(r.split("\t")[column] for r in rows) == [""] * (len(rows) - 1) + ["grace"]
