"""A minimal blocking AMI client for the e2e suite: log in, collect events in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable


class AmiError(Exception):
    pass


Event = dict[str, str]


def parse_block(block: str) -> Event:
    msg: Event = {}
    for line in block.split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            msg[key] = value
    return msg


class AmiClient:
    """Logs in with ``Events: on`` and keeps every event (the lab user reads cdr,system)."""

    def __init__(self, host: str, port: int, user: str, secret: str) -> None:
        self.addr = (host, port)
        self.user = user
        self.secret = secret
        self.sock: socket.socket | None = None
        self.events: list[Event] = []
        self.responses: list[Event] = []
        self.raw = bytearray()  # every byte received, banner included (a transcript)
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None
        self.closed = False

    def __enter__(self) -> AmiClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(self.addr, timeout)
        self.sock.settimeout(None)
        self.thread = threading.Thread(target=self._read, args=(self.sock,), name="ami",
                                       daemon=True)
        self.thread.start()
        self.send({"Action": "Login", "Username": self.user, "Secret": self.secret,
                   "Events": "on", "ActionID": "login"})
        try:
            resp = self.wait(lambda m: m.get("ActionID") == "login", timeout, responses=True)
            if resp.get("Response") != "Success":
                raise AmiError(f"AMI login failed: {resp.get('Message')}")
        except AmiError:
            self.close()
            raise

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.send({"Action": "Logoff"})
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            self.sock = None
        if self.thread is not None:
            self.thread.join(timeout=5)

    def send(self, fields: dict[str, str]) -> None:
        assert self.sock is not None
        data = "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
        self.sock.sendall(data.encode())

    def _read(self, sock: socket.socket) -> None:
        buf = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                with self.cond:
                    self.raw += chunk
                buf += chunk
                while b"\r\n\r\n" in buf:
                    raw, buf = buf.split(b"\r\n\r\n", 1)
                    msg = parse_block(raw.decode("utf-8", "replace"))
                    with self.cond:
                        (self.events if "Event" in msg else self.responses).append(msg)
                        self.cond.notify_all()
        except OSError:
            pass
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def mark(self) -> int:
        """Position in the event list; pass it as ``after`` to ignore earlier events."""
        with self.cond:
            return len(self.events)

    def wait(self, match: Callable[[Event], bool], timeout: float,
             responses: bool = False, after: int = 0) -> Event:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                pool = self.responses if responses else self.events[after:]
                for msg in pool:
                    if match(msg):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AmiError("expected AMI message did not arrive")
                self.cond.wait(left)

    def cdr_events(self) -> list[Event]:
        with self.cond:
            return [e for e in self.events if e.get("Event") == "Cdr"]
