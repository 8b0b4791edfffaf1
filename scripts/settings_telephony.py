"""Settings sections of the telephony side: FastAGI, AMI, the rendered Asterisk
configuration, the carrier call rules and call recording."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

from routing.call_caps import parse_caps
from routing.call_rules import CallWindow
from routing.errors import InvalidInput


def known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (e.g. Asia/Shanghai, UTC)") from None
    return name


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
        "stay in memory no longer than their call. Shops' own caller numbers, once a call "
        "matched them as a binding's A, are remembered apart (up to 10 000).")
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
