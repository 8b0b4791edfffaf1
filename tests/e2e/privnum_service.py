"""privnum as deployed, for the scenario suites: real ``privnum serve`` / ``privnum ami listen``
processes on the lab's FastAGI port, a throwaway PostgreSQL database, a Redis prefix of their
own, the real CLI (in-process, same code as the ``privnum`` command) and the call log.

One :class:`PrivnumStack` per test module (starting it costs a migration and a process start);
each test gets a fresh shop (:meth:`PrivnumStack.fresh_shop`) so bindings, callers and call-log
rows of one test never meet another's: state is reset by namespacing, not by restarting.

Note: ``tests/e2e/test_api_flow.py`` has its own ``Daemon`` (``serve()`` in a thread with a
SQLite store); this module runs separate processes instead and shares no code with it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg.rows import dict_row

from agi import channel_vars as cv
from binding_store import migrate
from binding_store.crypto import KeyRing
from scripts import asterisk_lab
from tests.e2e.ami import AmiClient, Event
from tests.e2e.conftest import RunningLab
from tests.pg import libpq
from tests.scripts.cli_helpers import privnum_app

PRIVNUM = str(Path(sys.executable).parent / "privnum")
REDIS_URL = os.environ.get("PRIVNUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SYSTEM_NAME = "pnlab"  # the lab's Asterisk system name (CDR key with uniqueid)
POOL_SIZE = 60
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def pool_number(i: int) -> str:
    return f"+861700000{i:04d}"


def national(e164: str) -> str:
    """What a phone dials for a +86 pool number (and what privnum presents as X)."""
    assert e164.startswith("+86"), e164
    return e164[3:]


class ServiceError(AssertionError):
    pass


@dataclass
class PrivnumProcess:
    """One privnum process (``serve`` or ``ami listen``) with its log; started and stopped by
    PID, never by name."""

    name: str
    args: Sequence[str]
    config: Path
    log_file: Path
    ready_lines: Sequence[str]
    extra_env: dict[str, str] = field(default_factory=dict)  # beside PRIVNUM_CONFIG
    proc: subprocess.Popen[bytes] | None = None
    _log_offset: int = 0

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        if self.running:
            return
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVNUM_")}
        env.update(PRIVNUM_CONFIG=str(self.config), NO_COLOR="1", **self.extra_env)
        self._log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as out:
            self.proc = subprocess.Popen([PRIVNUM, *self.args], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        missing = list(self.ready_lines)
        while missing:
            if self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited {self.proc.returncode} at start:\n"
                                   f"{self.log_since_start()[-3000:]}")
            text = self.log_since_start()
            missing = [line for line in self.ready_lines if line not in text]
            if missing and time.monotonic() > deadline:
                self.kill()
                raise ServiceError(f"{self.name} not ready within {timeout:.0f} s "
                                   f"(no {missing!r} in {self.log_file})")
            time.sleep(0.1)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_since_start(self) -> str:
        with contextlib.suppress(FileNotFoundError), self.log_file.open("rb") as fh:
            fh.seek(self._log_offset)
            return fh.read().decode("utf-8", "replace")
        return ""

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM (graceful: drains calls, flushes CDRs), SIGKILL after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye (what a crash or an OOM kill does)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None


@dataclass(frozen=True)
class Shop:
    shop_id: str
    main_account: str
    main_phone: str
    sub_account: str
    sub_phone: str


@dataclass(frozen=True)
class Binding:
    binding_id: str
    x: str  # E.164
    caller: str  # E.164
    expires: str

    @property
    def x_dialled(self) -> str:
        return national(self.x)


_ISSUED = re.compile(r"dial (\+\d+) from (\+\d+) to reach .*\n\s+binding (\w+)\s+state \w+"
                     r"\s+expires (\S+)")


@dataclass
class PrivnumStack:
    """Config + database + processes for one test module."""

    lab: RunningLab
    workdir: Path
    database_url: str
    ami_in_serve: bool = True  # False: FastAGI only; the listener is ``privnum ami listen``
    redis_prefix: str = field(default_factory=lambda: f"pn-e2e-{secrets.token_hex(4)}")
    serve: PrivnumProcess = field(init=False)
    listener: PrivnumProcess = field(init=False)
    _shops: int = 0

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = self.workdir / "privnum.toml"
        self.config.write_text(self._toml(), encoding="utf-8")
        ready = ["privnum serving FastAGI on"]
        if self.ami_in_serve:
            ready.append("AMI connected to")
        self.serve = PrivnumProcess("privnum serve", ["serve"], self.config,
                                    self.workdir / "serve.log", ready)
        self.listener = PrivnumProcess(
            "privnum ami listen", ["ami", "listen"], self.config,
            self.workdir / "ami-listen.log", ["AMI connected to"])

    @property
    def csv_dir(self) -> Path:
        return self.lab.root / "var/log/asterisk/cdr-custom"

    def _toml(self) -> str:
        lab, d = self.lab, self.workdir
        host, port = lab.agi[0]
        return f"""\
data_dir = "{d}"
log_level = "INFO"

[database]
url = "{self.database_url}"
timeout_seconds = 5.0

[redis]
url = "{REDIS_URL}"
prefix = "{self.redis_prefix}"
timeout_seconds = 1.0

[keys]
file = "{d / 'keys.json'}"

[bindings]
cooldown_seconds = 0

[agi]
host = "{host}"
port = {port}
system_name = "{SYSTEM_NAME}"
shutdown_grace_seconds = 2.0

[ami]
enabled = {"true" if self.ami_in_serve else "false"}
port = {lab.ami_port}
username = "{asterisk_lab.LAB_AMI_USER}"
secret = "{asterisk_lab.LAB_AMI_SECRET}"
reconnect_delay_seconds = 0.5
batch_seconds = 0.2

[asterisk]
dial_template = "PJSIP/{{number}}"
system_name = "{SYSTEM_NAME}"

[api]
enabled = false

[call_log]
cdr_csv_dir = "{self.csv_dir}"
"""

    # ------------------------------------------------------------------ lifecycle

    def prepare(self) -> None:
        """Schema, keys and a pool of ``POOL_SIZE`` numbers (region ``lab``)."""
        migrate.upgrade(self.database_url)
        KeyRing.generate().save(self.workdir / "keys.json")
        pool = self.workdir / "pool.csv"
        pool.write_text("number,region\n" + "".join(
            f"{pool_number(i)},lab\n" for i in range(1, POOL_SIZE + 1)), encoding="utf-8")
        self.cli("pool", "import", "-q", str(pool))

    def close(self) -> None:
        self.listener.stop()
        self.serve.stop()
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
        try:
            keys = list(client.scan_iter(match=f"*{self.redis_prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    # ------------------------------------------------------------------ CLI

    def cli_result(self, *args: str) -> Any:
        from typer.testing import CliRunner

        return CliRunner().invoke(privnum_app(), ["--config", str(self.config), *args],
                                  env={"PRIVNUM_CONFIG": None, "COLUMNS": "250",
                                       "NO_COLOR": "1", "TERM": "dumb"},
                                  catch_exceptions=False)

    def cli(self, *args: str) -> str:
        """``privnum <args>``; fails the test on a non-zero exit."""
        result = self.cli_result(*args)
        if result.exit_code != 0:
            raise ServiceError(f"privnum {' '.join(args)} exited {result.exit_code}: "
                               f"{result.stdout}{result.stderr}")
        return str(result.stdout)

    def fresh_shop(self, tag: str, main_phone: str, sub_phone: str) -> Shop:
        """A new enabled shop: main account on ``main_phone``, a reviewed sub-account whose
        phone ``sub_phone`` is an approved caller."""
        self._shops += 1
        sid = f"{tag}-{self._shops}-{secrets.token_hex(2)}"
        shop = Shop(sid, f"{sid}-main", "+86" + main_phone, f"{sid}-sub", "+86" + sub_phone)
        self.cli("shop", "enable", sid, "--main-account", shop.main_account,
                 "--phone", main_phone, "--agreement", "2023-05")
        self.cli("accounts", "add", sid, shop.sub_account, "--phone", sub_phone, "--reviewed")
        self.cli("callers", "add", sid, sub_phone)
        return shop

    def bind(self, shop: Shop, order: str, caller: str, buyer: str,
             ttl: int | None = None) -> Binding:
        args = ["bind", "--shop", shop.shop_id, "--order", order, "--caller", caller,
                "--buyer", buyer, "--buyer-id", f"buyer-{order}"]
        if ttl is not None:
            args += ["--ttl", str(ttl)]
        return self.binding_of(self.cli(*args))

    @staticmethod
    def binding_of(out: str) -> Binding:
        """The binding ``privnum bind`` / ``switch-caller`` printed."""
        m = _ISSUED.search(out)
        assert m, out
        return Binding(binding_id=m[3], x=m[1], caller=m[2], expires=m[4])

    # ------------------------------------------------------------------ call log

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(libpq(self.database_url), connect_timeout=5,
                             row_factory=dict_row) as conn:
            return list(conn.execute(sql, params).fetchall())

    def cdr_rows(self, where: str = "TRUE", *params: Any) -> list[dict[str, Any]]:
        return self.query(f"SELECT * FROM cdrs WHERE {where} ORDER BY id", *params)

    def wait_rows(self, where: str, *params: Any, count: int = 1, timeout: float = 20.0
                  ) -> list[dict[str, Any]]:
        """The call-log rows matching ``where`` once there are at least ``count``."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.cdr_rows(where, *params)
            if len(rows) >= count:
                return rows
            if time.monotonic() > deadline:
                raise ServiceError(f"call log: {len(rows)} row(s) where {where} {params}, "
                                   f"expected {count} within {timeout:.0f} s")
            time.sleep(0.3)


@contextlib.contextmanager
def privnum_stack(lab: RunningLab, workdir: Path, database_url: str, *,
                  ami_in_serve: bool = True) -> Iterator[PrivnumStack]:
    stack = PrivnumStack(lab, workdir, database_url, ami_in_serve=ami_in_serve)
    try:
        stack.prepare()
        stack.serve.start()
        yield stack
    finally:
        stack.close()


# ---------------------------------------------------------------------- AMI side


def originate_local(ami: AmiClient, x_dialled: str, caller: str, *, wait_seconds: int = 10,
                    timeout: float = 10.0) -> None:
    """AMI ``Originate`` of ``Local/<X>@privnum-inbound`` with caller ID ``caller``; the ;1
    half runs ``Wait(wait_seconds)``, the ;2 half runs the privnum dialplan as if ``caller``
    had dialled X (a hang-up of either half ends both: keep ``wait_seconds`` longer than a
    reject prompt, or the prompt is cut). The lab's AMI user reads no ``call`` class, so there
    is no ``OriginateResponse``: find the call by its tagged ``Cdr`` (:func:`tagged_cdr`)."""
    action_id = f"orig-{secrets.token_hex(4)}"
    ami.send({"Action": "Originate", "ActionID": action_id,
              "Channel": f"Local/{x_dialled}@privnum-inbound", "Application": "Wait",
              "Data": str(wait_seconds), "CallerID": f'"{caller}" <{caller}>',
              "Timeout": "30000", "Async": "true"})
    resp = ami.wait(lambda m: m.get("ActionID") == action_id, timeout, responses=True)
    if resp.get("Response") != "Success":
        raise ServiceError(f"Originate refused: {resp}")


def originate_as_trunk(ami: AmiClient, x_dialled: str, caller: str, *, wait_seconds: int = 10,
                       timeout: float = 10.0) -> None:
    """Like :func:`originate_local`, but the way a carrier trunk delivers the call: the
    dialplan side (;2) gets ``caller`` as its caller ID and the test's own side (;1) carries
    no number at all (only its connected line is ``caller``, which no CDR records), so every
    number Asterisk reports comes from privnum's dialplan, not from the harness."""
    action_id = f"orig-{secrets.token_hex(4)}"
    ami.send({"Action": "Originate", "ActionID": action_id,
              "Channel": f"Local/{x_dialled}@privnum-inbound", "Application": "Wait",
              "Data": str(wait_seconds), "Variable": f"CONNECTEDLINE(num,i)={caller}",
              "Timeout": "30000", "Async": "true"})
    resp = ami.wait(lambda m: m.get("ActionID") == action_id, timeout, responses=True)
    if resp.get("Response") != "Success":
        raise ServiceError(f"Originate refused: {resp}")


def tagged_cdr(ami: AmiClient, match: Callable[[Event], bool], *, after: int,
               timeout: float = 20.0) -> Event:
    """The next AMI ``Cdr`` event privnum's dialplan tagged (``PnReason`` set) that matches."""
    reason = cv.CDR_AMI_HEADERS[cv.CDR_REASON]
    return ami.wait(lambda e: e.get("Event") == "Cdr" and bool(e.get(reason)) and match(e),
                    timeout, after=after)


def hangup_cause_of(cdr: Event) -> str:
    return cdr.get("LastData", "") if cdr.get("LastApplication") == "Hangup" else ""


class DialplanLog:
    """The lab Asterisk's verbose log (``messages.log``) from a mark on: which prompt a channel
    was played (AMI cannot tell: the lab user reads no ``call``/``dialplan`` events)."""

    def __init__(self, lab: RunningLab) -> None:
        self.path = lab.root / "var/log/asterisk/messages.log"
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def text(self) -> str:
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            return fh.read().decode("utf-8", "replace")

    def played(self, channel_prefix: str, prompt: str) -> bool:
        """True when a channel named ``channel_prefix...`` ran ``Playback(prompt...)``:
        directly (fail path) or through the reject path's ``ExecIf(1?Playback(...))``."""
        ch = re.escape(channel_prefix)
        direct = re.compile(rf'Playback\("{ch}[^"]*", "{re.escape(prompt)}[,"]')
        via_exec_if = re.compile(rf'ExecIf\("{ch}[^"]*", "1\?Playback\({re.escape(prompt)}\)"\)')
        text = self.text()
        return bool(direct.search(text) or via_exec_if.search(text))
