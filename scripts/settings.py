"""The one typed settings object: env vars ``PRIVNUM_*`` (nested with ``__``) over an optional
TOML file (``--config`` or ``PRIVNUM_CONFIG``) over defaults. Built once in the entry point."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from routing.call_caps import parse_caps
from routing.call_rules import CallDirection, CallRules, CallWindow
from routing.errors import ConfigurationError, InvalidInput
from routing.number_classes import NumberClasses, NumberKind, RegionClasses, Segment
from scripts.clock import parse_clock
from scripts.settings_sources import source_of, unknown_env, unknown_file_keys

CDR_CUSTOM_DIR = "cdr-custom"
"""Asterisk's ``cdr_custom`` writes under ``<astlogdir>/cdr-custom/``."""

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


def known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (e.g. Asia/Shanghai, UTC)") from None
    return name


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


class BindingSettings(BaseModel):
    """Bindings (X bound to an order's A and B)."""

    ttl_seconds: int = Field(default=86_400, ge=60, description="How long a binding lives.")
    cooldown_seconds: int = Field(default=3_600, ge=0,
                                  description="How long a released X rests before reuse.")
    default_region: str = Field(default="CN",
                                description="Region of numbers given without a country code.")
    expired_lookback_days: int = Field(
        default=7, ge=0, description="How far back a reject looks for an expired binding, to "
        "say 'expired' rather than 'unauthorized'.")
    expiry_sweep_seconds: float = Field(
        default=30.0, ge=0, description="'privnum serve' marks bindings past their expiry as "
        "expired (and sends binding.expired) every this many seconds; 0: only when a change "
        "meets them.")


class ExtensionSettings(BaseModel):
    """Extension mode: one virtual number X serves many bindings, each with an extension."""

    mode_policy: Literal["axb_then_extension", "extension_then_axb", "axb", "extension"] = (
        Field(default="axb_then_extension", description="Which pool mode a new binding takes "
              "when the request names none: AXB first with extension numbers as overflow "
              "(default), extension first, or one mode only."))
    digit_timeout_seconds: int = Field(
        default=5, ge=1, le=99, description="How long the dialplan waits for the extension "
        "after the prompt.")
    max_tries: int = Field(default=3, ge=1, le=9, description="How many times a caller may "
                           "enter the extension (a wrong one or none) before the call is "
                           "refused (extension_invalid / extension_timeout).")
    prompt: str = Field(default="extension", pattern=r"^[A-Za-z0-9_/&-]+$",
                        description="Sound file(s) asking for the extension (&-joined).")
    retry_prompt: str = Field(default="pbx-invalid", pattern=r"^[A-Za-z0-9_/&-]+$",
                              description="Sound file(s) after a wrong extension.")
    directory_refresh_seconds: float = Field(
        default=10.0, ge=0, description="How often the call path re-reads which pool numbers "
        "are extension numbers.")


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
    """The virtual-number pool."""

    number_classes: dict[str, NumberClassSettings] = Field(
        default_factory=_default_number_classes,
        description="Per region (ISO code): the number kinds and segments a pool number (X) "
        "must belong to. An entry replaces its region's default completely.")

    @field_validator("number_classes", mode="before")
    @classmethod
    def _region_codes(cls, value: Any) -> Any:
        # Region codes in any case: environment variable names arrive lower-cased.
        if isinstance(value, dict):
            return {str(k).upper(): v for k, v in value.items()}
        return value

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
    """The FastAGI service Asterisk asks for every call."""

    host: str = Field(default="127.0.0.1", description="Address FastAGI listens on.")
    port: int = Field(default=4573, ge=1, le=65535, description="FastAGI port.")
    env_timeout_seconds: float = Field(default=2.0, gt=0,
                                       description="Deadline for Asterisk's AGI environment.")
    env_max_bytes: int = Field(default=16_384, ge=1024,
                               description="Largest AGI environment accepted.")
    command_timeout_seconds: float = Field(default=2.0, gt=0,
                                           description="Deadline of one AGI command's answer.")
    call_timeout_seconds: float = Field(default=10.0, gt=0,
                                        description="Deadline of one call's routing decision.")
    store_timeout_seconds: float = Field(default=1.0, gt=0,
                                         description="Deadline of the store on the call path.")
    workers: int | None = Field(
        default=None, ge=1, examples=[2],
        description="Call-path processes sharing the FastAGI port "
        "(SO_REUSEPORT; 'privnum serve --workers N'). Empty: one per core on PostgreSQL, one "
        "on SQLite.")
    max_concurrent_lookups: int | None = Field(
        default=None, ge=0, examples=[4],
        description="Call-path store look-ups in flight at once per "
        "process; more calls queue (see lookup_queue_seconds). 0: no limit. Empty: 4 on "
        "SQLite (it serialises anyway), no limit otherwise.")
    lookup_queue_seconds: float = Field(
        default=5.0, gt=0, description="How long a call may queue for a look-up slot before "
        "it is rejected (fail closed); within call_timeout_seconds, outside "
        "store_timeout_seconds.")
    caller_cache_size: int = Field(
        default=0, ge=0, description="Distinct caller IDs whose parsed form each call-path "
        "process remembers (LRU, memory only: never logged or stored) so a repeat caller is "
        "not parsed again. 0 (the default): parse every call, so buyers' numbers calling back "
        "stay in memory no longer than their call.")
    shutdown_grace_seconds: float = Field(
        default=10.0, ge=0, description="On SIGTERM: how long calls in flight may finish.")
    max_call_seconds: int = Field(default=3_600, ge=10,
                                  description="Longest bridged call (Dial L() limit).")
    dial_format: Literal["e164", "national"] = Field(
        default="national", description="How the number to dial is handed to the dialplan: "
        "national (13800138000) or e164 (+8613800138000).")
    system_name: str = Field(
        default="", description="Asterisk's systemname (asterisk.conf), so CDRs join their "
        "call attempts exactly. Empty: asterisk.system_name.")


class AmiSettings(BaseModel):
    """The Asterisk manager interface: CDR listener and click-to-call."""

    enabled: bool = Field(default=False, description="Listen for CDRs over AMI ('serve').")
    host: str = Field(default="127.0.0.1", description="Asterisk's AMI address.")
    port: int = Field(default=5038, ge=1, le=65535, description="Asterisk's AMI port.")
    username: str = Field(default="privnum", description="AMI user (manager.conf).")
    secret: str = Field(default="", description="AMI secret (manager.conf).",
                        json_schema_extra={"secret": "value"})
    ping_interval_seconds: float = Field(default=10.0, gt=0,
                                         description="How often the connection is checked.")
    # The call log's side of AMI: watchdog, batching, back-pressure, CDR time zone.
    ping_timeout_seconds: float = Field(default=5.0, gt=0,
                                        description="A ping unanswered this long: reconnect.")
    login_timeout_seconds: float = Field(default=10.0, gt=0, description="Deadline of login.")
    reconnect_delay_seconds: float = Field(
        default=2.0, gt=0, description="First reconnect delay; doubles (with jitter) up to "
        "reconnect_max_delay_seconds.")
    reconnect_max_delay_seconds: float = Field(default=60.0, gt=0,
                                               description="Longest reconnect delay.")
    events: str = Field(default="cdr,system", description="AMI event classes asked for.")
    batch_size: int = Field(default=200, ge=1, description="CDRs written per batch.")
    batch_seconds: float = Field(default=0.5, gt=0,
                                 description="Longest wait before a partial batch is written.")
    queue_max: int = Field(default=10_000, ge=10,
                           description="CDRs buffered before the listener pushes back.")
    cdr_timezone: str = Field(default="UTC",
                              description="Time zone of the times in Asterisk's CDRs.")

    @field_validator("cdr_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return known_zone(value)


class AsteriskSettings(BaseModel):
    """What 'privnum asterisk render' writes into the Asterisk configuration."""

    fastagi_hosts: list[str] = Field(
        default=[], examples=[["10.0.0.5:4573", "10.0.0.6:4573"]],
        description="FastAGI services (host:port) tried in order. Empty: this host's agi.host"
        ":agi.port.")
    dial_template: str = Field(default="PJSIP/{number}@privnum-trunk",
                               description="Dial string; {number} is the number to dial.")
    trunk_host: str | None = Field(
        default=None, examples=["sip.carrier.example:5060"],
        description="The carrier's SIP host[:port]. Unset: a sample trunk to fill in.")
    sip_bind: str = Field(default="127.0.0.1", description="Address PJSIP listens on.")
    sip_port: int = Field(default=5060, ge=1, le=65535, description="PJSIP port.")
    system_name: str = Field(default="privnum", description="asterisk.conf systemname.")
    max_ring_seconds: int = Field(default=45, ge=1, le=600,
                                  description="How long the called party may ring.")
    log_dir: str = Field(default="/var/log/asterisk", description="Asterisk's astlogdir.")


class ApiSettings(BaseModel):
    """The HTTP API."""

    enabled: bool = Field(default=True, description="Serve the HTTP API with 'privnum serve'.")
    host: str = Field(default="127.0.0.1", description="Address the HTTP API listens on.")
    port: int = Field(default=8080, ge=1, le=65535, description="HTTP API port.")
    max_body_bytes: int = Field(default=65_536, ge=1024,
                                description="Largest request body accepted.")
    body_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A request body not complete this long after the "
        "handler asks for it: 408, connection closed.")
    idempotency_ttl_hours: float = Field(
        default=24.0, gt=0, le=24 * 30,
        description="How long the response to a POST with an Idempotency-Key is replayed to "
        "a repeat of that request (same credential, key and request).")
    idempotency_purge_minutes: float = Field(
        default=60.0, gt=0, description="How often expired idempotency keys are deleted.")
    token_cache_seconds: float = Field(
        default=5.0, ge=0, le=60,
        description="How long a process keeps a bearer token it verified before reading it "
        "again. A token revoked through this process stops at once, an expired token at its "
        "expiry; one revoked elsewhere (the CLI, another privnum process), or whose account "
        "changed, within this time. 0: every request reads its token.")
    probe_fastagi: bool = Field(
        default=False, description="'privnum api' alone: also probe the FastAGI port "
        "(agi.host, agi.port) that a 'privnum serve' next to it listens on, for /healthz and "
        "the console. 'privnum serve' always probes its own.")


class CallLogSettings(BaseModel):
    """The shops' call log and the auditors' exports."""

    order_link_template: str = Field(
        default="", examples=["https://shop.example.com/orders/{order_id}"],
        description="Link to an order in the merchant's system ({order_id}, {shop_id}). "
        "Empty: no order link is shown.")
    chat_link_template: str = Field(
        default="", examples=["https://shop.example.com/im?order={order_id}&buyer={buyer_id}"],
        description="Link to the buyer chat ({order_id}, {buyer_id}, {shop_id}). Empty: no "
        "chat link is shown.")
    retention_days: int = Field(default=180, ge=1,
                                description="Call records older than this are purged.")
    cdr_csv_dir: Path | None = Field(
        default=None, examples=["/var/log/asterisk/cdr-custom"],
        description="Where Asterisk's safety-net CSV privnum-cdr.csv is read. Unset: "
        "<asterisk.log_dir>/cdr-custom, where the rendered cdr_custom.conf writes it.")
    # Reconcile window, and when an attempt without CDR is closed as a record of its own.
    reconcile_lookback_days: int = Field(
        default=2, ge=1, description="How far back a reconcile reads the CSV.")
    orphan_grace_seconds: int = Field(
        default=7_200, ge=60,
        description="A call attempt without CDR this long is closed as a record of its own.")


class ConsoleSettings(BaseModel):
    """The read-only web console at /console on the HTTP API's port."""

    enabled: bool = Field(default=True, description="Serve the web console at /console.")
    session_minutes: int = Field(
        default=480, ge=5, le=10_080,
        description="A console session (cookie) ends this long after sign-in; a revoked "
        "token ends it as it ends API requests (api.token_cache_seconds). Sessions also "
        "end when privnum restarts.")
    export_dir: Path | None = Field(
        default=None, examples=["/var/lib/privnum/exports"],
        description="Where exports started from the console are written (with their "
        "manifests). Unset: <data_dir>/exports.")
    chart_days: int = Field(default=14, ge=1, le=30,
                            description="Days in the operations page's calls-per-day chart.")
    timezone: str = Field(
        default="UTC", examples=["Asia/Shanghai"],
        description="Time zone of the operations page's days (shops' pages use each shop's "
        "own zone).")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return known_zone(value)


class LogSettings(BaseModel):
    """Logs (stderr; the journal under systemd)."""

    format: Literal["text", "json"] = Field(
        default="text", description="text: one readable line per event; json: one JSON object "
        "per line (ts, level, logger, msg, request_id, ...), uvicorn's access log included.")


class WebhookSettings(BaseModel):
    """Call and binding events pushed to subscribed receivers (docs/api.md#webhooks)."""

    enabled: bool = Field(default=True, description="False: no outbox rows are written and "
                          "'privnum serve' runs no delivery worker.")
    retry_minutes: list[float] = Field(
        default_factory=lambda: [1.0, 4.0, 9.0, 106.0, 203.0, 300.0], min_length=1,
        max_length=100, description="Delays (minutes) before the 2nd, 3rd ... attempt of a "
        "failed delivery; after the last one fails the delivery is a dead letter "
        "('privnum webhooks replay').")
    timeout_seconds: float = Field(default=10.0, gt=0, le=300,
                                   description="Per-request timeout of a delivery.")
    concurrency: int = Field(default=8, ge=1, le=256,
                             description="Deliveries in flight at once.")
    poll_seconds: float = Field(default=0.5, gt=0, le=60,
                                description="How often the worker looks for new events.")
    retention_days: float = Field(default=14, gt=0,
                                  description="How long delivered events are kept.")

    @field_validator("retry_minutes")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(m <= 0 for m in value):
            raise ValueError("every delay must be above 0 minutes")
        return value


class CallRulesSettings(BaseModel):
    """The platform's default carrier call rules; a shop's own ('privnum shop rules') win."""

    direction: Literal["both", "merchant_only", "callback_only"] = Field(
        default="both", description="Which calls bindings carry: both ways, the shop calling "
        "buyers only, or buyers calling the shop only (else refused 'direction_refused').")
    grace_seconds: int = Field(
        default=0, ge=0, le=7 * 86_400, description="How long after a binding expired a buyer "
        "calling back still reaches the shop (the call log marks it 'grace'). 0: none.")
    merchant_window: str = Field(
        default="", examples=["08:00-21:00"], description="Permitted time for the shop's calls "
        "to buyers, HH:MM-HH:MM in the shop's time zone (else refused 'quiet_hours'). "
        "Empty: any time.")
    callback_window: str = Field(
        default="", examples=["08:00-22:00"], description="Permitted time for buyers' calls "
        "to the shop, as merchant_window. Empty: any time.")
    require_caller_report: bool = Field(
        default=False, description="Caller numbers must be reported to the carrier with their "
        "real user ('privnum shop report-caller') before they place calls (else refused "
        "'caller_unreported'; binding them still works).")
    warning_seconds: int = Field(
        default=60, ge=0, le=3_600, description="With the call-length limit (agi."
        "max_call_seconds), both parties hear warning_sound this many seconds before it (Dial "
        "L(limit:warning:repeat)). 0: no warning.")
    warning_repeat_seconds: int = Field(
        default=0, ge=0, le=3_600, description="Seconds between repeats of the warning; 0: "
        "once.")
    warning_sound: str = Field(
        default="beep", pattern=r"^[A-Za-z0-9_/-]+$",
        description="Asterisk sound file (no extension) of the last-minute warning.")
    caps: str = Field(
        default="", examples=["caller=20/100,buyer=5/20,number=30/300"], description="Call "
        "caps per rolling HOUR/DAY for each caller number A, buyer B and virtual number X "
        "(any subset; 0 = none; else refused cap_caller / cap_buyer / cap_number). Empty: "
        "no caps.")
    record: bool = Field(
        default=False, description="Record calls (a shop opts in with 'privnum shop rules "
        "--record yes'): both parties hear notice_sound before they are connected (a call "
        "whose notice cannot play is not bridged); the recording is encrypted at rest as the "
        "call ends (see [recordings]).")
    record_retention_days: int = Field(
        default=90, ge=1, le=3_650, description="How long an encrypted recording is kept "
        "before 'privnum recordings purge' (and the purge service) deletes it.")
    notice_sound: str = Field(
        default="beep", pattern=r"^[A-Za-z0-9_/-]+$", description="Asterisk sound file (no "
        "extension) of the recording notice both parties hear.")
    cache_seconds: float = Field(
        default=5.0, ge=0, le=300, description="How long the call path keeps a shop's rules "
        "before reading them again: a change applies to calls within this time.")

    @field_validator("caps")
    @classmethod
    def _caps(cls, value: str) -> str:
        try:
            parse_caps(value)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return value.strip()

    @field_validator("merchant_window", "callback_window")
    @classmethod
    def _window(cls, value: str) -> str:
        if value.strip():
            try:
                CallWindow.parse(value)
            except InvalidInput as exc:
                raise ValueError(str(exc)) from None
        return value.strip()


class TestingSettings(BaseModel):
    """For end-to-end tests only; every command refuses to start while one is set, except
    'privnum serve --allow-test-clock'."""

    clock: str = Field(
        default="", examples=["2030-01-07T02:00:00Z", "+5h30m"], description="The instant "
        "the service's clock starts from (ISO 8601 with a zone), or an offset from real time "
        "([+-][Nd][Nh][Nm][Ns]); it then advances with real time. Used for the call path's "
        "and the API's 'now' (quiet hours, expiry, grace, caps). Honoured only by 'privnum "
        "serve --allow-test-clock'. Empty: the real clock.")

    @field_validator("clock")
    @classmethod
    def _clock(cls, value: str) -> str:
        if value.strip():
            try:
                parse_clock(value)
            except InvalidInput as exc:
                raise ValueError(str(exc)) from None
        return value.strip()


class RecordingSettings(BaseModel):
    """Where recordings are written by Asterisk and kept encrypted by privnum."""

    spool_dir: Path = Field(
        default=Path("/var/spool/asterisk/privnum-recordings"), description="Where Asterisk's "
        "MixMonitor writes a recorded call's plaintext file, as privnum sees it (privnum "
        "encrypts and deletes it as the call ends).")
    asterisk_spool_dir: str = Field(
        default="", description="The same directory as Asterisk sees it (rendered into the "
        "dialplan). Empty: spool_dir.")
    store_dir: Path | None = Field(
        default=None, description="Where encrypted recordings are kept. Unset: "
        "<data_dir>/recordings.")
    min_seconds: int = Field(
        default=3, ge=0, le=3_600, description="A call billed fewer seconds keeps no "
        "recording.")
    settle_seconds: float = Field(
        default=1.0, ge=0, le=600, description="A file is encrypted once Asterisk has not "
        "written to it for this long (MixMonitor closes it just after the call).")
    orphan_seconds: float = Field(
        default=3_600, gt=0, description="A plaintext file no call record claimed for this "
        "long is deleted by the sweep (it cannot be attributed to a shop).")
    sweep_seconds: float = Field(
        default=60, gt=0, description="How often stale plaintext is swept and recordings "
        "past retention are purged (also once at start-up).")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRIVNUM_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(default=Path(".privnum"),
                           description="Where the embedded SQLite database and the key file live.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe log level written.")
    log: LogSettings = LogSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    keys: KeySettings = KeySettings()
    bindings: BindingSettings = BindingSettings()
    extensions: ExtensionSettings = ExtensionSettings()
    pool: PoolSettings = PoolSettings()
    agi: AgiSettings = AgiSettings()
    ami: AmiSettings = AmiSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    api: ApiSettings = ApiSettings()
    call_log: CallLogSettings = CallLogSettings()
    webhooks: WebhookSettings = WebhookSettings()
    console: ConsoleSettings = ConsoleSettings()
    call_rules: CallRulesSettings = CallRulesSettings()
    testing: TestingSettings = TestingSettings()
    recordings: RecordingSettings = RecordingSettings()
    risk_policy_file: Path | None = Field(
        default=None, examples=["/etc/privnum/risk.toml"],
        description="Risk policy of the plaintext reveal (TOML [risk]). Unset: the defaults.")

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
        if self.console.export_dir is None:
            self.console.export_dir = self.data_dir / "exports"
        if self.recordings.store_dir is None:
            self.recordings.store_dir = self.data_dir / "recordings"
        if self.call_log.cdr_csv_dir is None:
            self.call_log.cdr_csv_dir = Path(self.asterisk.log_dir) / CDR_CUSTOM_DIR
        return self

    def default_call_rules(self, timezone: str) -> CallRules:
        """The platform's call rules (``timezone``: where shops without one of their own
        are)."""
        c = self.call_rules
        return CallRules(
            direction=CallDirection(c.direction), grace_seconds=c.grace_seconds,
            merchant_window=CallWindow.parse(c.merchant_window) if c.merchant_window else None,
            callback_window=CallWindow.parse(c.callback_window) if c.callback_window else None,
            timezone=timezone, require_caller_report=c.require_caller_report,
            caps=parse_caps(c.caps), warning_seconds=c.warning_seconds,
            warning_repeat=c.warning_repeat_seconds, record=c.record,
            record_retention_days=c.record_retention_days)

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
    def recording_store_dir(self) -> Path:
        assert self.recordings.store_dir is not None
        return self.recordings.store_dir

    @property
    def asterisk_recording_dir(self) -> str:
        return self.recordings.asterisk_spool_dir or str(self.recordings.spool_dir)

    @property
    def cdr_csv_dir(self) -> Path:
        assert self.call_log.cdr_csv_dir is not None
        return self.call_log.cdr_csv_dir


def config_path(config_file: Path | None) -> Path | None:
    """The config file in use: ``--config``, else ``PRIVNUM_CONFIG``, else none."""
    return config_file or (Path(p) if (p := os.environ.get("PRIVNUM_CONFIG")) else None)


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(f"config file not found: {path}") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc}") from exc
    unknown = unknown_file_keys(Settings, values)
    if unknown:
        raise ConfigurationError(f"unknown setting {unknown[0]} in config file {path}")
    return values


def env_warnings() -> list[str]:
    """``PRIVNUM_*`` environment variables no setting reads (typos), one line each."""
    return unknown_env(Settings, os.environ)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings once; a bad file or value is a ConfigurationError with one line
    naming where the value came from (an environment variable or the config file)."""
    path = config_path(config_file)
    file_values = read_config_file(path) if path is not None else {}
    try:
        return Settings(**{**file_values, **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(p) for p in first["loc"])
        source = source_of(loc, file_values, os.environ)
        where = {"file": f"in config file {path}", "env": f"env {source.variable}"}.get(
            source.kind, source.kind)
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigurationError(
            f"invalid setting {'.'.join(loc)}: {message} ({where})") from None
    except SettingsError as exc:
        raise ConfigurationError(_unreadable_env(exc)) from None


def _unreadable_env(exc: SettingsError) -> str:
    """A section or list given as JSON in the environment that is not JSON."""
    found = re.search(r'field "([^"]+)"', str(exc))
    prefix = "PRIVNUM_" + (found[1].upper() if found else "")
    for name in sorted(os.environ):
        if name.upper() == prefix or name.upper().startswith(prefix + "__"):
            try:
                json.loads(os.environ[name])
            except ValueError as bad:
                return f"environment variable {name}: not valid JSON ({bad})"
    return f"cannot read the settings from the environment: {exc}"
