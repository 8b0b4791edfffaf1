"""Settings sections of the platform side: the HTTP API, the call log and exports, the web
console, logs, webhooks and the end-to-end tests' clock."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from routing.errors import InvalidInput
from scripts.clock import parse_clock
from scripts.settings_telephony import known_zone


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
    flush_seconds: float = Field(
        default=0.0, ge=0.0, le=10.0, description="0 (the default): every line is written at "
        "once. > 0: the services (serve, its workers, api, ami listen) write INFO and DEBUG "
        "lines in batches at most this late, writes of up to 4 KiB of whole lines instead of "
        "one per line; WARNING and worse, and everything at exit, at once. For a call path "
        "at peak volume (it logs a line per call): 0.2 saves it about 5 us of CPU per call and, "
        "under systemd, a wake-up of the journal per line. A process killed outright loses "
        "the lines of its last interval.")


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
