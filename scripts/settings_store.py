"""Settings sections of privnum's stores: the database, the Redis hot index, the key file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

DATABASE_DRIVERS = {"sqlite+aiosqlite": "sqlite+aiosqlite:///PATH",
                    "postgresql+psycopg": "postgresql+psycopg://USER@HOST/DB"}
_DRIVER_HINTS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg",
                 "postgres": "postgresql+psycopg", "postgresql+psycopg2": "postgresql+psycopg",
                 "postgresql+asyncpg": "postgresql+psycopg"}
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def supported_database_url(url: str) -> str:
    """The URL when privnum can run on it; else a ValueError saying what it can run on."""
    scheme, sep, _rest = url.partition("://")
    if scheme in DATABASE_DRIVERS and sep:
        return url
    hint = _DRIVER_HINTS.get(scheme)
    if hint:
        raise ValueError(f"invalid database URL: use {hint}://... (the driver privnum ships "
                         f"with), not {scheme}://")
    # Only the scheme is echoed: the rest may hold a password.
    what = f"{scheme.split('+')[0]!r} is not supported" if sep else "no scheme://"
    raise ValueError(f"invalid database URL: {what} (privnum runs on "
                     f"{' or '.join(DATABASE_DRIVERS.values())})")


class DatabaseSettings(BaseModel):
    """The database: SQLite for a small install, PostgreSQL beyond it."""

    url: str | None = Field(
        default=None, examples=["postgresql+psycopg://privnum@127.0.0.1/privnum"],
        description="SQLAlchemy URL: sqlite+aiosqlite:///PATH or postgresql+psycopg://USER"
        "@HOST/DB. Unset: an SQLite file privnum.db in data_dir.",
        json_schema_extra={"secret": "url"})
    timeout_seconds: float = Field(default=2.0, gt=0,
                                   description="Deadline of one database call.")
    pool_size: int = Field(default=10, ge=1, description="Connections kept open (PostgreSQL).")
    read_url: str | None = Field(
        default=None, examples=["postgresql+psycopg://privnum@replica.example/privnum"],
        description="A read replica (e.g. a PostgreSQL streaming standby) for call-log queries "
        "and exports (API /calls and its CSV export, 'privnum calls list', 'privnum cdr "
        "export'); never for the call path or any write. Unset: read from url.",
        json_schema_extra={"secret": "url"})
    partition_period: Literal["day", "week", "month"] = Field(
        default="week", description="PostgreSQL: the length of the call log's time partitions "
        "(cdrs, call_attempts, audit_events).")
    partitions_ahead: int = Field(
        default=4, ge=1, le=366,
        description="'privnum serve' keeps the current partition and this many more created.")
    partition_check_seconds: float = Field(
        default=3_600, ge=0, description="How often 'privnum serve' checks the partitions "
        "(0: only 'privnum db partitions create' creates them).")

    @field_validator("url", "read_url")
    @classmethod
    def _supported(cls, value: str | None) -> str | None:
        # Empty (PRIVNUM_DATABASE__URL=) means unset: the embedded default.
        return supported_database_url(value) if value else None


class RedisSettings(BaseModel):
    """The Redis hot index (optional)."""

    url: str | None = Field(
        default=None, examples=["redis://127.0.0.1:6379/0"],
        description="redis://, rediss:// or unix:// URL. Unset: no Redis, look-ups read SQL "
        "(unless redis.sentinels is set). With sentinels, only its database number, user, "
        "password and scheme (rediss: TLS) are used; the master's address comes from them.",
        json_schema_extra={"secret": "url"})
    sentinels: list[str] = Field(
        default=[], examples=[["10.0.0.7:26379", "10.0.0.8:26379", "10.0.0.9:26379"]],
        description="Redis Sentinels (host:port) watching the master of redis.service_name. "
        "Set: privnum asks them where the master is and follows it after a failover. Empty: "
        "redis.url names the one Redis.")
    service_name: str = Field(
        default="privnum", description="The master's name in the Sentinels' configuration "
        "('sentinel monitor <name> ...'); used with redis.sentinels.")
    timeout_seconds: float = Field(default=0.5, gt=0, description="Deadline of one Redis call.")
    prefix: str = Field(default="privnum", pattern=r"^[^{}\s]+$",
                        description="Prefix of every Redis key; the index's keys carry it as "
                        "their hash tag ({privnum}:...). No braces or spaces.")
    check_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often 'privnum serve' compares the index's "
        "watermark with SQL's (and rebuilds an index that is behind or lost).")
    rebuild_batch: int = Field(default=500, ge=1,
                               description="Bindings a rebuild of the index writes per batch.")

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str | None) -> str | None:
        if not value:
            return None  # empty (PRIVNUM_REDIS__URL=) means unset: no Redis
        if value.partition("://")[0] not in _REDIS_SCHEMES:
            raise ValueError(f"not a Redis URL (use {', '.join(s + '://' for s in _REDIS_SCHEMES)}"
                             "...)")
        return value

    @field_validator("sentinels")
    @classmethod
    def _host_ports(cls, value: list[str]) -> list[str]:
        for entry in value:
            host_port(entry)
        return value

    @property
    def configured(self) -> bool:
        """Whether privnum uses Redis at all."""
        return bool(self.url or self.sentinels)

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [host_port(entry) for entry in self.sentinels]


def host_port(entry: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) as a pair; a ValueError saying what is wrong."""
    host, sep, port = entry.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{entry!r} is not host:port")
    return host, int(port)


class KeySettings(BaseModel):
    """Encryption keys of buyer numbers."""

    file: Path | None = Field(
        default=None, examples=["/var/lib/privnum/keys.json"],
        description="Key file ('privnum keys generate'); back it up. Unset: keys.json in "
        "data_dir.")
