"""``privnum db partitions`` (create ahead, list), the read settings and the partition upkeep
``privnum serve`` runs: on PostgreSQL partitions appear, on SQLite there is nothing to do."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest

from binding_store import migrate
from binding_store.db import Database
from binding_store.partitions import partitions_of
from scripts import container as wiring
from scripts.partition_service import keep_partitions, wanted
from scripts.settings import Settings, load_settings
from tests.scripts.cli_helpers import Cli, one_line_error


def test_create_is_idempotent_and_list_shows_them(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    first = cli.ok("db", "partitions", "create", "--ahead", "6")
    listed = cli.ok("db", "partitions", "list")
    if "sqlite" in cli.database_url:
        assert "SQLite keeps one table" in first and "SQLite keeps one table" in listed
        return
    # the migration made the current week and four more: two more weeks per table now
    assert first.count("created cdrs_p") == 2 and "6 partition(s) created" in first
    assert "0 partition(s) created" in cli.ok("db", "partitions", "create", "--ahead", "6")
    assert listed.count("cdrs_p") == 7 and "cdrs_default" in listed
    as_json = json.loads(cli.ok("db", "partitions", "list", "--json"))
    cdrs = [p for p in as_json if p["table"] == "cdrs"]
    assert len(cdrs) == 8 and [p["from"] for p in cdrs].count(None) == 1  # + the DEFAULT
    assert "no drift" in cli.ok("db", "check")  # partitions are not model tables


def test_bad_period_is_one_line(lite: Cli) -> None:
    one_line_error(lite("db", "partitions", "create", "--period", "fortnight"),
                   "--period must be one of day, week, month")
    one_line_error(lite("db", "partitions", "list",
                        env={"PRIVNUM_DATABASE__PARTITION_PERIOD": "year"}), "invalid setting")


def test_read_url_setting_defaults_to_the_primary(monkeypatch: pytest.MonkeyPatch) -> None:
    primary = "postgresql+psycopg://u@db1/privnum"
    assert Settings(database={"url": primary}).database_read_url == primary
    monkeypatch.setenv("PRIVNUM_DATABASE__URL", primary)
    monkeypatch.setenv("PRIVNUM_DATABASE__READ_URL", "postgresql+psycopg://u@db2/privnum")
    settings = load_settings()
    assert settings.database_read_url == "postgresql+psycopg://u@db2/privnum"
    reader = wiring.read_database(settings)
    assert reader.read_only and reader.url.endswith("@db2/privnum")
    assert not wiring.database(settings).read_only


@pytest.mark.postgres
async def test_serve_keeps_partitions_ahead(empty_pg_url: str, tmp_path: Path) -> None:
    migrate.upgrade(empty_pg_url)
    settings = Settings(data_dir=tmp_path, database={
        "url": empty_pg_url, "partition_period": "day", "partitions_ahead": 40})
    assert wanted(settings)
    assert not wanted(Settings(data_dir=tmp_path))  # SQLite: nothing to keep
    stop = asyncio.Event()
    task = asyncio.create_task(keep_partitions(settings, stop))
    db = Database(empty_pg_url)
    wanted_until = wiring.utc_now() + timedelta(days=40)
    try:
        for _ in range(200):  # the first round runs at once
            parts = [p for p in (await partitions_of(db))["cdrs"] if p.upper is not None]
            if parts[-1].upper is not None and parts[-1].upper > wanted_until:
                break
            await asyncio.sleep(0.05)
        # after the migration's weeks, one partition per day up to 40 days ahead
        assert parts[-1].upper is not None and parts[-1].upper > wanted_until
        assert parts[-1].lower is not None and parts[-1].upper - parts[-1].lower == timedelta(
            days=1)
        stop.set()
        await asyncio.wait_for(task, 10)  # and it stops when told
    finally:
        stop.set()
        await db.dispose()
