"""baresip user agents inside the Asterisk lab root, driven over ``ctrl_tcp``.

Each UA runs as ``chroot <lab root> baresip -f <own config dir>`` with its own SIP port (spaced
10 apart: baresip 1.1.0 also opens SIP port+1 for TLS) and a ``ctrl_tcp`` socket on loopback.
``ctrl_tcp`` speaks netstrings (``<len>:<json>,``): we send ``{"command", "params", "token"}``
and receive ``{"response": true, "ok", "data", "token"}`` and
``{"event": true, "type", "class", "peeruri", "param", ...}``.

Audio: ``ausine`` source at ``ausrc_srate 48000`` (a 440 Hz tone), ``aufile`` sink writing a
wav file into the UA's directory (so "audio flowed" can be checked from its size, too).
No ``auplay_srate``: forcing the player to 48 kHz adds a resampler, and baresip 1.1.0 then
crashed (SIGSEGV) in about 1 call in 30 when a call with media ended; without it 0 in 180.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("privnum.e2e.baresip")

MODULE_DIR = "/usr/lib/baresip/modules"
RUN_DIR_IN_ROOT = "/tmp/privnum-e2e"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BaresipError(Exception):
    """A UA did not do what was asked within its timeout."""


@dataclass(frozen=True)
class Phone:
    name: str
    number: str
    password: str
    sip_port: int
    ctrl_port: int
    auto_answer: bool = False


def _netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


@dataclass
class _Inbox:
    events: list[dict[str, Any]] = field(default_factory=list)
    responses: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    cond: threading.Condition = field(default_factory=threading.Condition)
    closed: bool = False


class BaresipUA:
    """One baresip process. Not thread-safe: one test drives it."""

    def __init__(self, lab_root: Path, phone: Phone, *, registrar: str = "127.0.0.1:5060",
                 log_dir: Path | None = None) -> None:
        self.root = lab_root
        self.phone = phone
        self.registrar = registrar
        self.dir_in_root = f"{RUN_DIR_IN_ROOT}/{phone.name}"
        self.dir = lab_root / self.dir_in_root.lstrip("/")
        self.log_dir = log_dir or self.dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.inbox = _Inbox()
        self._reader: threading.Thread | None = None
        self._token = 0
        self.restarts = 0

    # ------------------------------------------------------------ lifecycle

    def _write_config(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        p = self.phone
        answer = "auto" if p.auto_answer else "manual"
        (self.dir / "accounts").write_text(
            f"<sip:{p.number}@{self.registrar};transport=udp>;auth_pass={p.password};"
            f"regint=600;answermode={answer};audio_codecs=PCMU,PCMA\n"
        )
        rtp = 20000 + (p.sip_port % 1000) * 4
        (self.dir / "config").write_text("\n".join([
            "poll_method\t\tepoll",
            f"sip_listen\t\t127.0.0.1:{p.sip_port}",
            "sip_trans_def\t\tudp",
            "call_local_timeout\t120",
            "call_max_calls\t\t4",
            "audio_source\t\tausine,440",
            f"audio_player\t\taufile,{self.dir_in_root}/speaker.wav",
            f"audio_alert\t\taufile,{self.dir_in_root}/alert.wav",
            "ausrc_srate\t\t48000",
            "ausrc_channels\t\t1",
            "auplay_channels\t\t1",
            f"rtp_ports\t\t{rtp}-{rtp + 3}",
            "rtp_stats\t\tyes",
            "net_interface\t\t127.0.0.1",
            f"module_path\t\t{MODULE_DIR}",
            "module\t\t\tg711.so",
            "module\t\t\tausine.so",
            "module\t\t\taufile.so",
            "module_app\t\taccount.so",
            "module_app\t\tmenu.so",
            "module_app\t\tctrl_tcp.so",
            f"ctrl_tcp_listen\t\t127.0.0.1:{p.ctrl_port}",
            "",
        ]))
        # empty contacts file keeps baresip from creating a template in $HOME
        (self.dir / "contacts").write_text("")

    def start(self, timeout: float = 15.0) -> None:
        self._write_config()
        logfile = self.log_dir / f"baresip-{self.phone.name}.log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(logfile, "ab") as out:
            self.proc = subprocess.Popen(
                ["chroot", str(self.root), "/usr/bin/env", "-i", "HOME=/root", "PATH=/usr/bin:/bin",
                 "baresip", "-f", self.dir_in_root, "-p", "/usr/share/baresip"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.inbox = _Inbox()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BaresipError(f"{self.phone.name}: baresip exited {self.proc.returncode}; "
                                   f"see {logfile}")
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.phone.ctrl_port), 1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BaresipError(f"{self.phone.name}: ctrl_tcp not up") from None
                time.sleep(0.1)
        self.sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, args=(self.sock, self.inbox),
                                        name=f"baresip-{self.phone.name}", daemon=True)
        self._reader.start()
        # REGISTER_OK may fire before ctrl_tcp is connected: poll reginfo instead.
        while not self.registered():
            if time.monotonic() > deadline:
                raise BaresipError(f"{self.phone.name}: not registered to {self.registrar}")
            time.sleep(0.1)

    def exit_code(self) -> int | None:
        """baresip's exit status (-11: SIGSEGV); waits briefly, the socket closes first."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, BaresipError):
                self.command("quit", timeout=2)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None
        self.proc = None

    def restart(self, reason: str) -> None:
        log.warning("restarting baresip %s: %s", self.phone.name, reason)
        self.restarts += 1
        self.stop()
        self.start()

    # ------------------------------------------------------------ protocol

    @staticmethod
    def _read_loop(sock: socket.socket, inbox: _Inbox) -> None:
        buf = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while True:
                    colon = buf.find(b":")
                    if colon < 0 or not buf[:colon].isdigit():
                        break
                    size = int(buf[:colon])
                    end = colon + 1 + size
                    if len(buf) < end + 1:
                        break
                    payload, buf = buf[colon + 1:end], buf[end + 1:]
                    try:
                        msg = json.loads(payload)
                    except ValueError:
                        log.warning("unparsable ctrl_tcp message: %r", payload[:200])
                        continue
                    if msg.get("response"):
                        inbox.responses.put(msg)
                    else:
                        with inbox.cond:
                            inbox.events.append(msg)
                            inbox.cond.notify_all()
        except OSError:
            pass
        finally:
            with inbox.cond:
                inbox.closed = True
                inbox.cond.notify_all()

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        if self.sock is None:
            raise BaresipError(f"{self.phone.name}: not running")
        self._token += 1
        token = f"t{self._token}"
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self.sock.sendall(_netstring(body))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BaresipError(f"{self.phone.name}: no response to {command!r}")
            try:
                msg = self.inbox.responses.get(timeout=left)
            except queue.Empty:
                continue
            if msg.get("token") == token:
                return msg

    def wait_for(self, types: Iterable[str], timeout: float = 10.0) -> dict[str, Any]:
        """First unconsumed event of one of ``types``; it and all earlier ones are consumed."""
        wanted = set(types)
        deadline = time.monotonic() + timeout
        with self.inbox.cond:
            while True:
                for i, ev in enumerate(self.inbox.events):
                    if ev.get("type") in wanted:
                        del self.inbox.events[: i + 1]
                        return ev
                left = deadline - time.monotonic()
                if left <= 0 or self.inbox.closed:
                    seen = [e.get("type") for e in self.inbox.events]
                    why = (f"ctrl_tcp closed, baresip exit code {self.exit_code()}"
                           if self.inbox.closed else f"not within {timeout:.0f} s")
                    raise BaresipError(f"{self.phone.name}: none of {sorted(wanted)}: {why} "
                                       f"(pending events: {seen})")
                self.inbox.cond.wait(left)

    def events_seen(self) -> list[dict[str, Any]]:
        with self.inbox.cond:
            return list(self.inbox.events)

    def drain(self) -> list[dict[str, Any]]:
        with self.inbox.cond:
            evs, self.inbox.events = self.inbox.events, []
            return evs

    # ------------------------------------------------------------ helpers

    def registered(self) -> bool:
        data = _ANSI.sub("", str(self.command("reginfo").get("data", "")))
        return " OK " in data

    def dial(self, number: str) -> dict[str, Any]:
        return self.command("dial", f"sip:{number}@{self.registrar}")

    def hangup(self) -> None:
        with contextlib.suppress(BaresipError):
            self.command("hangup")

    def caller_id_seen(self, event: dict[str, Any]) -> tuple[str, str]:
        """(number, display name) the phone shows for the other party of ``event``'s call.

        For an incoming call that is the caller ID from the INVITE's From header.
        """
        m = re.match(r"^sips?:([^@;>]+)@", str(event.get("peeruri", "")))
        return (m[1] if m else "", str(event.get("peerdisplayname", "")))

    def audio_flowed(self, timeout: float = 10.0) -> bool:
        """True once baresip reports RTP received on the call (``CALL_RTPESTAB``)."""
        try:
            self.wait_for({"CALL_RTPESTAB"}, timeout)
        except BaresipError:
            return False
        return True

    def rtcp_stats(self, timeout: float = 12.0) -> dict[str, Any]:
        """The next ``CALL_RTCP`` report (every ~5 s): tx/rx packet counts, loss, jitter."""
        return dict(self.wait_for({"CALL_RTCP"}, timeout).get("rtcp_stats", {}))

    def callstat(self) -> str:
        return str(self.command("callstat").get("data", ""))

    def listcalls(self) -> str:
        return str(self.command("listcalls").get("data", ""))
