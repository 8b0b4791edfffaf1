"""The one typed settings object: env vars ``PRIVNUM_*`` (nested with ``__``) over an optional
TOML file (``--config`` or ``PRIVNUM_CONFIG``) over defaults. Built once in the entry point."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from routing.errors import ConfigurationError
from routing.number_classes import NumberClasses, NumberKind, RegionClasses, Segment

CDR_CUSTOM_DIR = "cdr-custom"
"""Asterisk's ``cdr_custom`` writes under ``<astlogdir>/cdr-custom/``."""


class DatabaseSettings(BaseModel):
    # None means: an SQLite file in data_dir (the embedded default).
    url: str | None = None
    timeout_seconds: float = Field(default=2.0, gt=0)
    pool_size: int = Field(default=10, ge=1)
    # A read replica (e.g. a PostgreSQL streaming standby) for call-log queries and exports
    # (API /calls and its CSV export, 'privnum calls list', 'privnum cdr export'); never for
    # the call path or any write. None means: read from ``url``.
    read_url: str | None = None
    # PostgreSQL: the call log's time partitions (cdrs, call_attempts, audit_events). 'privnum
    # serve' keeps the current period and ``partitions_ahead`` more created, checking every
    # ``partition_check_seconds`` (0: only 'privnum db partitions create' does).
    partition_period: Literal["day", "week", "month"] = "week"
    partitions_ahead: int = Field(default=4, ge=1, le=366)
    partition_check_seconds: float = Field(default=3_600, ge=0)


class RedisSettings(BaseModel):
    # None means: no Redis; look-ups read SQL.
    url: str | None = None
    timeout_seconds: float = Field(default=0.5, gt=0)
    prefix: str = "privnum"
    # How often 'privnum serve' compares the index's watermark with SQL's (and rebuilds an
    # index that is behind or lost), and how many bindings a rebuild writes per batch.
    check_interval_seconds: float = Field(default=1.0, gt=0)
    rebuild_batch: int = Field(default=500, ge=1)


class KeySettings(BaseModel):
    # None means: keys.json in data_dir (created by 'privnum keys generate').
    file: Path | None = None


class BindingSettings(BaseModel):
    ttl_seconds: int = Field(default=86_400, ge=60)
    cooldown_seconds: int = Field(default=3_600, ge=0)
    default_region: str = "CN"
    # How far back a reject looks for an expired binding, to say "expired" not "unauthorized".
    expired_lookback_days: int = Field(default=7, ge=0)
    # 'privnum serve' marks bindings past their expiry as expired (and sends binding.expired)
    # every this many seconds; 0: only when a change meets them.
    expiry_sweep_seconds: float = Field(default=30.0, ge=0)


class SegmentSettings(BaseModel):
    """A dedicated number segment: national numbers of exactly ``length`` digits starting
    with ``prefix`` (China's privacy-number segment: prefix 700, length 15)."""

    model_config = ConfigDict(extra="forbid")
    prefix: str
    length: int
    name: str = ""


class NumberClassSettings(BaseModel):
    """What one numbering region accepts as a pool number (X). An entry replaces the default
    for its region completely: list every kind and segment the region should accept."""

    model_config = ConfigDict(extra="forbid")
    kinds: list[NumberKind] = []
    segments: list[SegmentSettings] = []


def _default_number_classes() -> dict[str, NumberClassSettings]:
    return {"CN": NumberClassSettings(
        kinds=[NumberKind.MOBILE, NumberKind.FIXED_LINE],
        segments=[SegmentSettings(prefix="700", length=15, name="700")])}


class PoolSettings(BaseModel):
    # Region (ISO code) -> the number classes a pool number of that region must belong to.
    number_classes: dict[str, NumberClassSettings] = Field(
        default_factory=_default_number_classes)

    @field_validator("number_classes")
    @classmethod
    def _check_classes(cls, value: dict[str, NumberClassSettings]
                       ) -> dict[str, NumberClassSettings]:
        _region_classes(value)  # a bad region, prefix or length is refused at start-up
        return value

    def region_classes(self) -> list[RegionClasses]:
        return _region_classes(self.number_classes)


def _region_classes(classes: dict[str, NumberClassSettings]) -> list[RegionClasses]:
    return [RegionClasses(region, kinds=frozenset(c.kinds),
                          segments=tuple(Segment(s.prefix, s.length, s.name)
                                         for s in c.segments))
            for region, c in classes.items()]


class AgiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=4573, ge=1, le=65535)
    env_timeout_seconds: float = Field(default=2.0, gt=0)
    env_max_bytes: int = Field(default=16_384, ge=1024)
    command_timeout_seconds: float = Field(default=2.0, gt=0)
    call_timeout_seconds: float = Field(default=10.0, gt=0)
    store_timeout_seconds: float = Field(default=1.0, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    max_call_seconds: int = Field(default=3_600, ge=10)
    # How the buyer/merchant number is handed to the dialplan's Dial string.
    dial_format: Literal["e164", "national"] = "national"
    system_name: str = ""


class AmiSettings(BaseModel):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = "privnum"
    secret: str = ""
    ping_interval_seconds: float = Field(default=10.0, gt=0)
    # The call log's side of AMI: watchdog, batching, back-pressure, CDR time zone.
    ping_timeout_seconds: float = Field(default=5.0, gt=0)
    login_timeout_seconds: float = Field(default=10.0, gt=0)
    # Reconnects back off: the first after reconnect_delay_seconds, then doubling (with
    # jitter) up to reconnect_max_delay_seconds (never below the first).
    reconnect_delay_seconds: float = Field(default=2.0, gt=0)
    reconnect_max_delay_seconds: float = Field(default=60.0, gt=0)
    events: str = "cdr,system"
    batch_size: int = Field(default=200, ge=1)
    batch_seconds: float = Field(default=0.5, gt=0)
    queue_max: int = Field(default=10_000, ge=10)
    cdr_timezone: str = "UTC"


class AsteriskSettings(BaseModel):
    """What ``privnum asterisk render`` writes into the Asterisk configuration."""

    # FastAGI services tried in order; empty means this host's [agi] host:port.
    fastagi_hosts: list[str] = []
    dial_template: str = "PJSIP/{number}@trunk"
    trunk_host: str | None = None
    sip_bind: str = "127.0.0.1"
    sip_port: int = Field(default=5060, ge=1, le=65535)
    system_name: str = "privnum"
    max_ring_seconds: int = Field(default=45, ge=1, le=600)
    log_dir: str = "/var/log/asterisk"


class ApiSettings(BaseModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=65_536, ge=1024)
    # A request body not complete this long after the handler asks for it: 408, closed.
    body_timeout_seconds: float = Field(default=10.0, gt=0)


class CallLogSettings(BaseModel):
    order_link_template: str = "https://merchant.example/orders/{order_id}"
    chat_link_template: str = "https://merchant.example/im?order={order_id}&buyer={buyer_id}"
    retention_days: int = Field(default=180, ge=1)
    # Asterisk's cdr-custom directory holding the safety-net CSV; None means
    # <asterisk.log_dir>/cdr-custom, where 'privnum asterisk render' has Asterisk write it.
    cdr_csv_dir: Path | None = None
    # Reconcile window, and when an attempt without CDR is closed as a record of its own.
    reconcile_lookback_days: int = Field(default=2, ge=1)
    orphan_grace_seconds: int = Field(default=7_200, ge=60)


class WebhookSettings(BaseModel):
    """Call and binding events pushed to subscribed receivers (docs/api.md#webhooks)."""

    # False: no outbox rows are written and 'privnum serve' runs no delivery worker.
    enabled: bool = True
    # Delays (minutes) before the 2nd, 3rd ... attempt of a failed delivery; after the last
    # one fails the delivery is a dead letter ('privnum webhooks replay').
    retry_minutes: list[float] = Field(default_factory=lambda: [1.0, 4.0, 9.0, 106.0, 203.0, 300.0],
                                       min_length=1, max_length=100)
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    concurrency: int = Field(default=8, ge=1, le=256)
    poll_seconds: float = Field(default=0.5, gt=0, le=60)
    retention_days: float = Field(default=14, gt=0)

    @field_validator("retry_minutes")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(m <= 0 for m in value):
            raise ValueError("every delay must be above 0 minutes")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRIVNUM_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Path(".privnum")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    keys: KeySettings = KeySettings()
    bindings: BindingSettings = BindingSettings()
    pool: PoolSettings = PoolSettings()
    agi: AgiSettings = AgiSettings()
    ami: AmiSettings = AmiSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    api: ApiSettings = ApiSettings()
    call_log: CallLogSettings = CallLogSettings()
    webhooks: WebhookSettings = WebhookSettings()
    risk_policy_file: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the config file, which arrives as init arguments.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _fill_paths(self) -> Settings:
        if self.database.url is None:
            self.database.url = f"sqlite+aiosqlite:///{self.data_dir / 'privnum.db'}"
        if self.keys.file is None:
            self.keys.file = self.data_dir / "keys.json"
        if self.call_log.cdr_csv_dir is None:
            self.call_log.cdr_csv_dir = Path(self.asterisk.log_dir) / CDR_CUSTOM_DIR
        return self

    @property
    def number_classes(self) -> NumberClasses:
        """The pool's number classes; numbers without a country code are read in
        ``bindings.default_region``."""
        return NumberClasses.of(self.pool.region_classes(), home=self.bindings.default_region)

    @property
    def database_url(self) -> str:
        assert self.database.url is not None
        return self.database.url

    @property
    def database_read_url(self) -> str:
        """Where call-log reads go: the replica if one is configured, else the primary."""
        return self.database.read_url or self.database_url

    @property
    def keys_file(self) -> Path:
        assert self.keys.file is not None
        return self.keys.file

    @property
    def cdr_csv_dir(self) -> Path:
        assert self.call_log.cdr_csv_dir is not None
        return self.call_log.cdr_csv_dir


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings once; a bad file or value is a ConfigurationError with one line."""
    path = config_file or (Path(p) if (p := os.environ.get("PRIVNUM_CONFIG")) else None)
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigurationError(f"config file not found: {path}") from exc
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read config file {path}: {exc}") from exc
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        env = "PRIVNUM_" + where.upper().replace(".", "__")
        raise ConfigurationError(f"invalid setting {where}: {first['msg']} (env {env})") from exc
