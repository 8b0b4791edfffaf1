"""Migrations: an empty database upgrades to head on SQLite and PostgreSQL, 'alembic check'
finds no drift, and the partial unique indexes exist (and bite) on both."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from binding_store import migrate
from binding_store.all_models import Base
from binding_store.db import Database, sync_url
from binding_store.issue_sql import PLAN_MODE_CUSTOM, POOL_ORDER_INDEX
from binding_store.models import Binding, PoolNumber, Shop
from routing.errors import ConfigurationError, StoreUnavailable
from tests.binding_store.shop_helpers import NOW, empty_pg_url

__all__ = ["empty_pg_url"]

PARTIAL = {"uq_active_ax": "state", "uq_active_bx": "state", "uq_active_order": "state",
           "uq_accounts_main": "role"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'privnum.db'}"
    return str(request.getfixturevalue("empty_pg_url"))


def _index_sql(url: str) -> dict[str, str]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = conn.execute(text("SELECT name, sql FROM sqlite_master "
                                         "WHERE type = 'index' AND sql IS NOT NULL")).all()
            else:
                rows = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes "
                                         "WHERE schemaname = 'public'")).all()
    finally:
        engine.dispose()
    return {str(name): str(sql) for name, sql in rows}


def test_empty_database_upgrades_to_head_without_drift(empty_url: str) -> None:
    assert migrate.current(empty_url) is None
    assert migrate.upgrade(empty_url) == migrate.head()
    assert migrate.current(empty_url) == migrate.head()
    migrate.check(empty_url)  # alembic check: raises on any difference
    assert migrate.drift(empty_url) == []
    engine = create_engine(sync_url(empty_url))
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) <= tables
    # Upgrading again is a no-op.
    assert migrate.upgrade(empty_url) == migrate.head()


def test_partial_unique_indexes_survive(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    indexes = _index_sql(empty_url)
    for name, column in PARTIAL.items():
        sql = indexes[name].upper()
        assert "UNIQUE" in sql and "WHERE" in sql and column.upper() in sql.split("WHERE")[1], \
            indexes[name]


def test_the_stale_check_index_is_partial_and_one_built_beforehand_is_kept(
        empty_url: str) -> None:
    migrate.upgrade(empty_url, "0019_issue_fetch_one")
    engine = create_engine(sync_url(empty_url))
    try:
        with engine.begin() as conn:  # as a deployer would, CONCURRENTLY on PostgreSQL
            conn.execute(text("CREATE INDEX ix_bindings_a_active_expiry ON bindings "
                              "(caller_a, expires_at) WHERE state = 'active'"))
    finally:
        engine.dispose()
    assert migrate.upgrade(empty_url) == migrate.head()
    assert migrate.drift(empty_url) == []
    sql = _index_sql(empty_url)["ix_bindings_a_active_expiry"]
    assert "WHERE" in sql.upper() and "active" in sql.split("WHERE")[1]
    command.downgrade(migrate.config(empty_url), "0019_issue_fetch_one")
    assert "ix_bindings_a_active_expiry" not in _index_sql(empty_url)


def test_the_issue_function_brings_its_pool_order_index(empty_url: str) -> None:
    """Migrations and ``create_all`` build the same index (``alembic check`` skips it: SQLite
    cannot compare it); PostgreSQL only."""
    migrate.upgrade(empty_url)
    indexes = _index_sql(empty_url)
    if empty_url.startswith("sqlite"):
        assert POOL_ORDER_INDEX not in indexes
        return
    sql = indexes[POOL_ORDER_INDEX]
    assert "last_released_at IS NOT NULL" in sql and "available" in sql and "axb" in sql, sql


def _issue_plan_mode(url: str) -> str | None:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            config = conn.execute(text("SELECT proconfig FROM pg_proc "
                                       "WHERE proname = 'privnum_issue'")).scalar_one()
    finally:
        engine.dispose()
    modes = [item.split("=", 1)[1] for item in config or []
             if item.startswith("plan_cache_mode=")]
    return modes[0] if modes else None


@pytest.mark.postgres
def test_the_issue_function_leaves_its_planning_to_the_session_at_head(empty_pg_url: str
                                                                       ) -> None:
    """0018: the session chooses (``issue_sql.PLAN_CHOICE``); 0017 planned per call."""
    migrate.upgrade(empty_pg_url)
    assert _issue_plan_mode(empty_pg_url) is None
    command.downgrade(migrate.config(empty_pg_url), "0017_issue_pool_order")
    assert _issue_plan_mode(empty_pg_url) == PLAN_MODE_CUSTOM
    migrate.upgrade(empty_pg_url)
    assert _issue_plan_mode(empty_pg_url) is None


def _issue_source(url: str) -> str:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT prosrc FROM pg_proc "
                                         "WHERE proname = 'privnum_issue'")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_the_issue_function_fetches_its_candidates_one_at_a_time_at_head(empty_pg_url: str
                                                                        ) -> None:
    """0019: an explicit cursor, one row per fetch (a FOR loop fetches ten rows ahead and
    probes each of them)."""
    migrate.upgrade(empty_pg_url)
    source = _issue_source(empty_pg_url)
    assert "OPEN v_cur NO SCROLL FOR" in source and "FETCH v_cur INTO v_x" in source
    assert "FOR v_x IN" not in source


@pytest.mark.postgres
def test_the_issue_function_writes_a_batchs_audit_rows_and_events_together_at_head(
        empty_pg_url: str) -> None:
    """0021: one INSERT for the batch's audit rows and one for its events, after the last
    request (a statement per binding cost more than its row)."""
    migrate.upgrade(empty_pg_url)
    source = _issue_source(empty_pg_url)
    assert source.count("FROM unnest(v_done, v_done_x) WITH ORDINALITY") == 2
    assert "VALUES (p_now, r->>'actor'" not in source


@pytest.mark.postgres
async def test_create_all_builds_the_issue_function_as_head_does(pg_database: Database
                                                                 ) -> None:
    assert _issue_plan_mode(pg_database.url) is None
    assert "FETCH v_cur INTO v_x" in _issue_source(pg_database.url)


async def test_partial_index_allows_released_but_not_two_active(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    db = Database(empty_url, timeout=5.0)

    def binding(i: int, state: str) -> Binding:
        return Binding(id=f"b{i}", shop_id="s1", order_id=f"o{i}", caller_a="+8613800138000",
                       virtual_x="+8617000000001", buyer_cipher=b"x", buyer_bidx=f"idx{i}",
                       buyer_masked="139****0000", created_at=NOW,
                       expires_at=NOW + timedelta(hours=24), state=state)

    try:
        async with db.session() as s:
            s.add(Shop(id="s1", name="", created_at=NOW, updated_at=NOW))
            s.add(PoolNumber(number="+8617000000001", region="", created_at=NOW))
            await s.flush()
            s.add_all([binding(1, "released"), binding(2, "expired"), binding(3, "active")])
            await s.commit()
        with pytest.raises(IntegrityError):
            async with db.session() as s:
                s.add(binding(4, "active"))  # same (A, X) as b3, both active
                await s.commit()
    finally:
        await db.dispose()


def test_check_reports_drift(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    engine = create_engine(sync_url(empty_url))
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX uq_active_bx"))
    finally:
        engine.dispose()
    with pytest.raises(migrate.SchemaDrift, match="schema differs"):
        migrate.check(empty_url)


def test_check_on_an_old_database_says_upgrade(empty_url: str) -> None:
    migrate.upgrade(empty_url, "0001_foundation")
    with pytest.raises(migrate.SchemaDrift, match="privnum db upgrade"):
        migrate.check(empty_url)


def test_foundation_downgrades_to_empty(empty_url: str) -> None:
    migrate.upgrade(empty_url, "0001_foundation")
    command.downgrade(migrate.config(empty_url), "base")
    engine = create_engine(sync_url(empty_url))
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


async def test_a_database_built_without_migrations_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'made.db'}"
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await db.dispose()
    with pytest.raises(ConfigurationError, match="no migration history"):
        migrate.upgrade(url)


@pytest.mark.parametrize(("dialect", "version", "refused"), [
    ("postgresql", (12, 17), True), ("postgresql", (9, 6, 24), True),
    ("postgresql", (13, 0), False), ("postgresql", (17, 2), False),
    ("sqlite", (3, 31, 1), False), ("postgresql", None, False)])
def test_upgrade_refuses_a_postgresql_older_than_13(dialect: str,
                                                    version: tuple[int, ...] | None,
                                                    refused: bool) -> None:
    if refused:
        with pytest.raises(ConfigurationError, match=r"PostgreSQL 13 or later is needed; "
                                                     r"this server is \d"):
            migrate.refuse_old_postgresql(dialect, version)
    else:
        migrate.refuse_old_postgresql(dialect, version)


def test_unreachable_database_and_bad_url_are_one_line_errors() -> None:
    with pytest.raises(StoreUnavailable, match="database unavailable"):
        migrate.upgrade("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    with pytest.raises(ConfigurationError, match="invalid database URL"):
        migrate.upgrade("not a url")
    with pytest.raises(ConfigurationError, match="invalid database URL"):
        migrate.current("nodriver+nothing://x/y")
