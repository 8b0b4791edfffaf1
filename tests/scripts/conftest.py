from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.logs import logging_restored
from tests.binding_store.shop_helpers import empty_pg_url
from tests.scripts.cli_helpers import Cli

__all__ = ["empty_pg_url"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    """The privnum CLI against an empty database (SQLite file, or a fresh PostgreSQL one)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'privnum.db'}"
    else:
        url = str(request.getfixturevalue("empty_pg_url"))
    return Cli(data_dir=tmp_path / "data", database_url=url)


@pytest.fixture
def lite(tmp_path: Path) -> Cli:
    """The privnum CLI on SQLite only (for input-validation tests that need no second run)."""
    return Cli(data_dir=tmp_path / "data",
               database_url=f"sqlite+aiosqlite:///{tmp_path / 'data' / 'privnum.db'}")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """The test may configure logging: the process's logging is put back after it."""
    with logging_restored():
        yield
