"""Build the store objects from ``Settings``: plain functions, called by entry points.

Every fault while building (bad URL, missing driver, missing or wrong key file) is a
PrivnumError with one clear line, never a traceback.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, ProgrammingError, SQLAlchemyError

from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from routing.errors import ConfigurationError, StoreUnavailable
from scripts.settings import Settings

_MISSING_SCHEMA = ("no such table", "does not exist", "undefinedtable")
log = logging.getLogger("privnum.serve")


def utc_now() -> datetime:
    return datetime.now(UTC)


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def database(settings: Settings) -> Database:
    return _database(settings, settings.database_url, read_only=False)


def read_database(settings: Settings) -> Database:
    """The call-log readers' Database: ``database.read_url`` (a replica) if set, else the
    primary; read-only either way."""
    return _database(settings, settings.database_read_url, read_only=True)


def _database(settings: Settings, url: str, *, read_only: bool) -> Database:
    try:
        return Database(url, timeout=settings.database.timeout_seconds,
                        pool_size=settings.database.pool_size, read_only=read_only)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        setting = "database.read_url" if read_only and settings.database.read_url else \
            "database URL"
        raise ConfigurationError(
            f"invalid {setting} {safe_url(url)}: {str(exc).splitlines()[0]}"
        ) from None


@asynccontextmanager
async def open_database(settings: Settings, *, reads: bool = False
                        ) -> AsyncIterator[Database]:
    """A Database for one CLI command; a missing schema or any SQL fault is one line.
    ``reads``: the call-log readers' (read-only, replica if configured) Database."""
    db = read_database(settings) if reads else database(settings)
    try:
        yield db
    except StoreUnavailable as exc:
        if any(m in str(exc).lower() for m in _MISSING_SCHEMA):
            raise StoreUnavailable(_schema_hint(db.url)) from exc
        raise
    except ProgrammingError as exc:
        if any(m in str(exc).lower() for m in _MISSING_SCHEMA):
            raise StoreUnavailable(_schema_hint(db.url)) from exc
        raise StoreUnavailable(f"database error: {_first_line(exc)}") from exc
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"database error: {_first_line(exc)}") from exc
    finally:
        with suppress(SQLAlchemyError, OSError):
            await db.dispose()


def _schema_hint(url: str) -> str:
    return (f"database {safe_url(url)} has no privnum schema "
            "(or an old one): run 'privnum db upgrade'")


def _first_line(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def keyring(settings: Settings) -> KeyRing:
    return KeyRing.load(settings.keys_file)


def warn_open_key_file(settings: Settings) -> None:
    """One warning when the key file can be read (or written) by group or others: whoever can
    read it can decrypt every buyer number."""
    path = settings.keys_file
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return  # loading it says what is wrong
    if mode & 0o077:
        log.warning("key file %s is accessible to group/others (mode %04o): anyone who can "
                    "read it can decrypt every buyer number; chmod 600 %s", path, mode, path)


def buyer_cipher(settings: Settings) -> BuyerCipher:
    return BuyerCipher(keyring(settings))
