"""Throwaway PostgreSQL databases for tests: created empty, dropped afterwards."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

PG_URL = os.environ.get("PRIVNUM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def scratch_database(tag: str) -> Iterator[str]:
    """URL of a new empty database (skips the test only outside CI when none is reachable)."""
    name = f"privnum_{tag}_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = psycopg.connect(libpq(PG_URL), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_URL.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(libpq(PG_URL), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
