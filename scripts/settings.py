"""The one typed settings object: env vars ``PRIVNUM_*`` (nested with ``__``) over an optional
TOML file (``--config`` or ``PRIVNUM_CONFIG``) over defaults. Built once in the entry point."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from routing.call_caps import parse_caps
from routing.call_rules import CallDirection, CallRules, CallWindow
from routing.errors import ConfigurationError
from routing.number_classes import NumberClasses
from scripts.settings_numbers import BindingSettings, ExtensionSettings, PoolSettings
from scripts.settings_platform import (
    ApiSettings,
    CallLogSettings,
    ConsoleSettings,
    LogSettings,
    TestingSettings,
    WebhookSettings,
)
from scripts.settings_sources import source_of, unknown_env, unknown_file_keys
from scripts.settings_store import DatabaseSettings, KeySettings, RedisSettings
from scripts.settings_telephony import (
    AgiSettings,
    AmiSettings,
    AsteriskSettings,
    CallRulesSettings,
    RecordingSettings,
)

CDR_CUSTOM_DIR = "cdr-custom"
"""Asterisk's ``cdr_custom`` writes under ``<astlogdir>/cdr-custom/``."""


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
