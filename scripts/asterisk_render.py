"""Render privnum's Asterisk configuration from ``asterisk_conf/templates``.

One plain function, :func:`render`, used by ``privnum asterisk render --out DIR`` and by the
Asterisk lab (``scripts/asterisk-lab start``). Templates use ``@@name@@`` placeholders, which
cannot collide with Asterisk's own ``${VAR}`` syntax; every placeholder must be filled and every
value is validated, so a rendered file never contains a stray newline, ``;`` or ``@@``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from agi import channel_vars as cv
from routing.recording import RECORDING_ID_PATTERN
from scripts.asterisk_read import AsteriskConfig

TEMPLATE_PACKAGE = "asterisk_conf"
CONFIG_FILES = (
    "asterisk.conf",
    "modules.conf",
    "logger.conf",
    "extensions.conf",
    "pjsip.conf",
    "rtp.conf",
    "manager.conf",
    "cdr.conf",
    "cdr_manager.conf",
    "cdr_custom.conf",
    "cel.conf",
    "indications.conf",
    "features.conf",
    "acl.conf",
    "udptl.conf",
    "pjproject.conf",
    "ccss.conf",
)

INCLUDE_FILES = {
    "extensions.conf": "extensions_privnum.conf",
    "pjsip.conf": "pjsip_privnum.conf",
    "manager.conf": "manager_privnum.conf",
    "cdr_manager.conf": "cdr_manager_privnum.conf",
    "cdr_custom.conf": "cdr_custom_privnum.conf",
}
"""Include mode: the file of an existing configuration -> privnum's part it ``#include``s."""

# autoload=no: everything Asterisk needs must be listed. res_agi fails to load without
# res_speech. Only what the privnum dialplan and the PJSIP endpoints use.
MODULES = (
    # dialplan
    "pbx_config.so",
    "app_dial.so",
    "app_playback.so",
    "app_stack.so",  # Gosub/Return, Dial b() pre-dial handlers
    "app_exec.so",  # ExecIf
    "app_read.so",  # extension mode: Read the extension
    "res_speech.so",
    "res_agi.so",
    "func_callerid.so",  # CALLERID, CONNECTEDLINE
    "func_cdr.so",
    "func_channel.so",  # CHANNEL(linkedid)
    "func_strings.so",  # REGEX, CSV_QUOTE
    "func_logic.so",
    # SIP
    "res_sorcery_config.so",
    "res_sorcery_memory.so",
    "res_sorcery_astdb.so",
    "res_pjproject.so",
    "res_pjsip.so",
    "res_pjsip_session.so",
    "res_pjsip_pubsub.so",  # chan_pjsip requires it
    "chan_pjsip.so",
    "res_pjsip_authenticator_digest.so",
    "res_pjsip_outbound_authenticator_digest.so",
    "res_pjsip_endpoint_identifier_ip.so",
    "res_pjsip_endpoint_identifier_user.so",
    "res_pjsip_registrar.so",
    "res_pjsip_caller_id.so",  # From/PAI from CONNECTEDLINE
    "res_pjsip_sdp_rtp.so",
    "res_pjsip_nat.so",
    "res_pjsip_rfc3326.so",  # Reason header carries the hangup cause
    "res_pjsip_logger.so",
    "res_rtp_asterisk.so",
    "res_timing_timerfd.so",
    # media
    "bridge_simple.so",
    "bridge_native_rtp.so",
    "bridge_builtin_interval_features.so",  # Dial L() with a warning: the timed announcements
    "app_mixmonitor.so",  # recording with notice
    "codec_ulaw.so",
    "codec_alaw.so",
    "codec_a_mu.so",
    "codec_gsm.so",
    "format_gsm.so",
    "format_wav.so",
    "format_pcm.so",
    # CDR backends: AMI events + safety-net CSV
    "cdr_manager.so",
    "res_cdrel_custom.so",  # Asterisk 22.x: cdr_custom needs it (cdrel_logger)
    "cdr_custom.so",
)

REQUIRED_MODULES = (
    "pbx_config", "app_dial", "app_playback", "app_mixmonitor", "app_stack", "app_exec",
    "app_read", "res_speech", "res_agi",
    "func_callerid", "func_cdr", "func_channel", "func_strings", "func_logic",
    "res_pjsip", "res_pjsip_session", "chan_pjsip", "res_pjsip_caller_id",
    "cdr_manager", "res_cdrel_custom", "cdr_custom",
)
"""Of :data:`MODULES`, what privnum's own dialplan, endpoints and CDR backends use: what an
existing PBX must load (include mode, ``privnum asterisk check``)."""

# Every name privnum defines starts with "privnum", so it cannot clash with a PBX's own.
TRUNK_ENDPOINT = "privnum-trunk"
UDP_TRANSPORT = "privnum-udp"
TCP_TRANSPORT = "privnum-tcp"

TRUNK_PLACEHOLDER = "192.0.2.1:5060"
_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_SECRET = re.compile(r"^[!-~]{8,128}$")  # printable ASCII, no space
_PROMPT = re.compile(r"^[A-Za-z0-9_/-]{1,80}$")
_DIAL = re.compile(r"^[A-Za-z0-9_./@:{}+-]+$")
_HOSTPORT = re.compile(r"^(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})$")
_PLACEHOLDER = re.compile(r"@@([a-z_]+)@@")


@dataclass(frozen=True)
class LabPhone:
    """A lab SIP phone: PJSIP endpoint, auth and AOR all named by its number."""

    number: str
    password: str


@dataclass(frozen=True)
class RenderOptions:
    """Everything the templates need. Defaults are a loopback-only single host."""

    fastagi: tuple[str, ...] = ("127.0.0.1:4573",)
    """privnum FastAGI services as host:port, tried in order while AGISTATUS != SUCCESS."""
    ami_user: str = "privnum"
    ami_secret: str = ""
    ami_bind: str = "127.0.0.1"
    ami_port: int = 5038
    ami_permit: tuple[str, ...] = ("127.0.0.1/32",)
    sip_bind: str = "127.0.0.1"
    sip_port: int = 5060
    dial_template: str = f"PJSIP/{{number}}@{TRUNK_ENDPOINT}"
    """Dial string; ``{number}`` becomes ``${PRIVNUM_DIAL_NUMBER}``. Lab: ``PJSIP/{number}``."""
    trunk_host: str | None = None
    """Carrier SIP host[:port] of the ``trunk`` endpoint. None: no trunk in lab mode (phones
    given), else a sample trunk pointing at a documentation address."""
    lab_phones: tuple[LabPhone, ...] = ()
    system_name: str = "privnum"
    max_ring_seconds: int = 45
    fail_prompt: str = "all-circuits-busy-now"
    fail_cause: int = 38  # network out of order
    reject_cause: int = 21  # call rejected
    fail_reason: str = "routing_error"
    log_dir: str = "/var/log/asterisk"
    """astlogdir; the safety-net CSV is ``<log_dir>/cdr-custom/privnum-cdr.csv``."""
    recording_dir: str = "/var/spool/asterisk/privnum-recordings"
    """Where MixMonitor writes recorded calls (as Asterisk sees it; privnum encrypts them)."""
    rtp_start: int = 10000
    rtp_end: int = 20000
    run_user: str | None = None
    verbose_log: bool = False
    extra_modules: tuple[str, ...] = field(default=())
    own_transports: bool = True
    """PJSIP transports of privnum's own (privnum-udp/-tcp on sip_bind:sip_port). Off for an
    existing PBX (include mode): its endpoints then use the PBX's transports."""

    def __post_init__(self) -> None:
        if not self.fastagi:
            raise ValueError("at least one FastAGI host:port is required")
        for hp in self.fastagi:
            m = _HOSTPORT.fullmatch(hp)
            if not m or not 0 < int(m["port"]) < 65536:
                raise ValueError(f"FastAGI address must be host:port, got {hp!r}")
        if not _NAME.fullmatch(self.ami_user):
            raise ValueError("AMI user: 1-40 letters, digits, _ . -")
        if not _SECRET.fullmatch(self.ami_secret) or ";" in self.ami_secret:
            raise ValueError("AMI secret: 8-128 printable characters, no spaces or ';'")
        for addr in (self.ami_bind, self.sip_bind):
            ipaddress.ip_address(addr)
        for net in self.ami_permit:
            ipaddress.ip_network(net, strict=False)
        for port in (self.ami_port, self.sip_port, self.rtp_start, self.rtp_end):
            if not 0 < port < 65536:
                raise ValueError(f"port out of range: {port}")
        if self.rtp_start >= self.rtp_end:
            raise ValueError("rtp_start must be below rtp_end")
        if "{number}" not in self.dial_template or not _DIAL.fullmatch(self.dial_template):
            raise ValueError("dial template must contain {number} and no commas or spaces")
        if self.trunk_host is not None and not re.fullmatch(r"^[A-Za-z0-9.-]+(:[0-9]+)?$",
                                                         self.trunk_host):
            raise ValueError(f"trunk host must be host[:port], got {self.trunk_host!r}")
        for phone in self.lab_phones:
            if not _NUMBER.fullmatch(phone.number) or not _SECRET.fullmatch(phone.password):
                raise ValueError(f"lab phone {phone.number!r}: bad number or password")
        if not _NAME.fullmatch(self.system_name):
            raise ValueError("system name: 1-40 letters, digits, _ . -")
        if not 1 <= self.max_ring_seconds <= 600:
            raise ValueError("max ring seconds must be 1..600")
        if not _PROMPT.fullmatch(self.fail_prompt):
            raise ValueError("fail prompt must be a sound name like all-circuits-busy-now")
        for cause in (self.fail_cause, self.reject_cause):
            if not 1 <= cause <= 127:
                raise ValueError(f"hangup cause must be 1..127, got {cause}")
        if not re.fullmatch(r"^[a-z_]+$", self.fail_reason):
            raise ValueError("fail reason must be a reason code")
        if not re.fullmatch(r"/[A-Za-z0-9_./-]*", self.log_dir):
            raise ValueError("log dir must be an absolute path")
        if not re.fullmatch(r"/[A-Za-z0-9_./-]*[A-Za-z0-9_-]", self.recording_dir):
            raise ValueError("recording dir must be an absolute path")
        if self.run_user is not None and not _NAME.fullmatch(self.run_user):
            raise ValueError("run user: letters, digits, _ . -")
        for mod in self.extra_modules:
            if not re.fullmatch(r"^[a-z0-9_]+\.so$", mod):
                raise ValueError(f"module must look like name.so, got {mod!r}")


def _template(name: str) -> str:
    return (resources.files(TEMPLATE_PACKAGE) / "templates" / name).read_text(encoding="utf-8")


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace every ``@@name@@``; unknown names and leftovers are errors."""

    def sub(m: re.Match[str]) -> str:
        try:
            return values[m[1]]
        except KeyError:
            raise ValueError(f"template placeholder @@{m[1]}@@ has no value") from None

    out = _PLACEHOLDER.sub(sub, text)
    if "@@" in out:
        raise ValueError("unfilled or malformed @@placeholder@@ in template")
    return out


def _csv_template() -> str:
    return ",".join('""' if c in cv.CDR_CSV_EMPTY else f"${{CSV_QUOTE(${{CDR({c})}})}}"
                    for c in cv.CDR_CSV_COLUMNS)


def values(o: RenderOptions) -> dict[str, str]:
    attempts = "".join(fill(_template("extensions-agi-attempt.tmpl"), {"hostport": hp})
                       for hp in o.fastagi).rstrip("\n")
    trunk = ""
    trunk_host = o.trunk_host or ("" if o.lab_phones else TRUNK_PLACEHOLDER)
    transport = (f"transport={UDP_TRANSPORT}" if o.own_transports
                 else "; transport: the PBX's own (Asterisk picks one that matches)")
    if trunk_host:
        trunk = fill(_template("pjsip-trunk.tmpl"),
                     {"trunk_host": trunk_host, "trunk_match": trunk_host.split(":")[0],
                      "trunk_name": TRUNK_ENDPOINT, "transport": transport})
        if not o.trunk_host:
            trunk = (f"\n; SAMPLE ONLY: {TRUNK_PLACEHOLDER} is a documentation address "
                     "(TEST-NET-1).\n; Render with your carrier's address (trunk_host) before use."
                     + trunk)
        trunk = trunk.rstrip("\n")
    phones = "".join(
        fill(_template("pjsip-phone.tmpl"),
             {"number": p.number, "password": p.password, "sip_bind": o.sip_bind,
              "transport": transport})
        for p in o.lab_phones
    ).rstrip("\n")
    modules = "\n".join(f"load => {m}" for m in (*MODULES, *o.extra_modules))
    mappings = "\n".join(f"{k} => {v}" for k, v in cv.CDR_AMI_HEADERS.items())
    return {
        "system_name": o.system_name,
        "agi_attempts": attempts,
        "dial": o.dial_template.replace("{number}", "${" + cv.DIAL_NUMBER + "}"),
        "ring_seconds": str(o.max_ring_seconds),
        "reject_cause": str(o.reject_cause),
        "fail_cause": str(o.fail_cause),
        "fail_prompt": o.fail_prompt,
        "fail_reason": o.fail_reason,
        "sip_bind": o.sip_bind,
        "sip_port": str(o.sip_port),
        "udp_transport": UDP_TRANSPORT,
        "tcp_transport": TCP_TRANSPORT,
        "trunk": trunk,
        "phones": phones,
        "ami_bind": o.ami_bind,
        "ami_port": str(o.ami_port),
        "ami_user": o.ami_user,
        "ami_secret": o.ami_secret,
        "ami_permit": ",".join(o.ami_permit),
        "mappings": mappings,
        "log_dir": o.log_dir,
        "recording_dir": o.recording_dir,
        "recording_id": RECORDING_ID_PATTERN,
        "csv_file": cv.CDR_CSV_FILE,
        "csv_columns": ",".join(cv.CDR_CSV_COLUMNS),
        "csv_template": _csv_template(),
        "modules": modules,
        "verbose": "3" if o.verbose_log else "0",
        "verbose_log": "on" if o.verbose_log else "off",
        "log_levels": "notice,warning,error,verbose" if o.verbose_log
        else "notice,warning,error",
        "run_user": f"runuser = {o.run_user}\nrungroup = {o.run_user}" if o.run_user else "",
        "rtp_start": str(o.rtp_start),
        "rtp_end": str(o.rtp_end),
    }


def render_text(options: RenderOptions, name: str) -> str:
    """One rendered file, in memory (``privnum asterisk check`` compares against it)."""
    return fill(_template(name), values(options))


def render(options: RenderOptions, out_dir: Path) -> list[Path]:
    """Write every config file into ``out_dir`` (created if needed); return the paths."""
    vals = values(options)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONFIG_FILES:
        path = out_dir / name
        text = fill(_template(name), vals)
        AsteriskConfig(text, name)  # what Asterisk will read must parse (else one clear error)
        path.write_text(text, encoding="utf-8")
        if name == "manager.conf":
            path.chmod(0o640)  # holds the AMI secret
        written.append(path)
    return written
