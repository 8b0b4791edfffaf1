"""Settings → each part's own configuration: the database engines, the Redis hot index, the
call path's options, the AMI listener's. Pure translation, no state: the composition root
(``scripts.container``) and the commands that need one part call these."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from binding_store.db import Database
from routing.errors import ConfigurationError
from scripts.settings import Settings

if TYPE_CHECKING:
    from agi.ami_listener import AmiListenerConfig
    from agi.handlers import RouteOptions
    from binding_store.redis_index import RedisIndex


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
            f"invalid {setting} {safe_url(url)}: {str(exc).splitlines()[0]}") from None


def redis_index(settings: Settings) -> RedisIndex | None:
    redis = settings.redis
    if not redis.configured:
        return None
    from binding_store.redis_index import RedisIndex

    # Ended bindings stay as markers for as long as a reject may say "expired".
    keep = int(settings.bindings.expired_lookback_days * 86_400)
    try:
        if redis.sentinels:
            return RedisIndex.from_sentinel(
                redis.sentinel_addresses(), redis.service_name, prefix=redis.prefix,
                timeout=redis.timeout_seconds, keep_ended=keep,
                **sentinel_connection(redis.url))
        assert redis.url is not None
        return RedisIndex.from_url(redis.url, prefix=redis.prefix,
                                   timeout=redis.timeout_seconds, keep_ended=keep)
    except ValueError as exc:
        raise ConfigurationError(f"invalid Redis URL: {exc}") from None


def sentinel_connection(url: str | None) -> dict[str, Any]:
    """What ``redis.url`` says about the data connections when Sentinels name the master:
    database number, user, password, TLS (its host and port are not used)."""
    if not url:
        return {}
    from redis.asyncio.connection import parse_url

    parsed = parse_url(url)
    options: dict[str, Any] = {k: parsed[k] for k in ("db", "username", "password")
                               if parsed.get(k) is not None}
    if url.startswith("rediss://"):
        options["ssl"] = True
    return options


def route_options(settings: Settings) -> RouteOptions:
    from agi.handlers import RouteOptions

    return RouteOptions(
        max_call_seconds=settings.agi.max_call_seconds,
        dial_format=settings.agi.dial_format,
        region=settings.bindings.default_region,
        store_timeout=settings.agi.store_timeout_seconds,
        max_concurrent_lookups=lookup_slots(settings),
        lookup_queue_seconds=settings.agi.lookup_queue_seconds,
        caller_cache_size=settings.agi.caller_cache_size,
        system_name=settings.agi.system_name or settings.asterisk.system_name,
        number_classes=settings.number_classes,
        warning_sound=settings.call_rules.warning_sound,
        notice_sound=settings.call_rules.notice_sound,
    )


SQLITE_LOOKUP_SLOTS = 4


def lookup_slots(settings: Settings) -> int:
    """``agi.max_concurrent_lookups``, or its default for the database in use."""
    if settings.agi.max_concurrent_lookups is not None:
        return settings.agi.max_concurrent_lookups
    return SQLITE_LOOKUP_SLOTS if (settings.database.url or "").startswith("sqlite") else 0


def cdr_zone(settings: Settings) -> ZoneInfo:
    try:
        return ZoneInfo(settings.ami.cdr_timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"invalid setting ami.cdr_timezone: unknown time zone {settings.ami.cdr_timezone!r}"
            " (env PRIVNUM_AMI__CDR_TIMEZONE)") from exc


def default_csv_file(settings: Settings) -> Path:
    """Asterisk's safety-net CSV: ``call_log.cdr_csv_dir`` (by default the ``cdr-custom``
    directory under ``asterisk.log_dir``, where the rendered ``cdr_custom.conf`` puts it)."""
    from agi.ami_cdr import csv_path

    return csv_path(settings.cdr_csv_dir)


def listener_config(settings: Settings) -> AmiListenerConfig:
    from agi.ami_listener import AmiListenerConfig

    ami = settings.ami
    return AmiListenerConfig(
        host=ami.host, port=ami.port, username=ami.username, secret=ami.secret,
        events=ami.events, zone=cdr_zone(settings), system_name=settings.agi.system_name,
        ping_interval=ami.ping_interval_seconds, ping_timeout=ami.ping_timeout_seconds,
        login_timeout=ami.login_timeout_seconds, reconnect_delay=ami.reconnect_delay_seconds,
        reconnect_max_delay=ami.reconnect_max_delay_seconds,
        batch_size=ami.batch_size, batch_seconds=ami.batch_seconds, queue_max=ami.queue_max,
        number_classes=settings.number_classes)
