"""A small AMI server on a real socket: banner, Login, Ping, Originate, and a recorded stream.

Each accepted connection gets the next payload from ``streams`` (raw AMI event bytes, e.g. a
recorded transcript) right after ``FullyBooted``. ``answer_pings = False`` makes it go silent
(the socket stays open), as a hung Asterisk would.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from routing.cdr import encode_ami_message, split_ami_stream

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
BOOTED = encode_ami_message({"Event": "FullyBooted", "Privilege": "system,all",
                             "Uptime": "41", "LastReload": "41", "Status": "Fully Booted"})


def events_of(path: Path) -> bytes:
    """Only the events of a recorded transcript (its responses answered the recorder)."""
    _, messages = split_ami_stream(path.read_bytes())
    return b"".join(encode_ami_message(m) for m in messages
                    if "Event" in m and m["Event"] != "FullyBooted")


class FakeAmi:
    def __init__(self, streams: list[bytes] | None = None, secret: str = "s3cret") -> None:
        self.streams = list(streams or [])
        self.secret = secret
        self.answer_pings = True
        self.connections = 0
        self.logins = 0
        self.pings = 0
        self.actions: list[dict[str, str]] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        # Closed connections end their tasks; cancelling one inside its own clean-up would
        # leave a cancelled task that asyncio's stream callback logs as an error.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def drop(self) -> None:
        """Close every client connection (Asterisk restarted, network cut)."""
        for writer in list(self._writers):
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self._writers.add(writer)
        self.connections += 1
        stream = self.streams.pop(0) if self.streams else b""
        try:
            writer.write(BANNER)
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                action = {}
                for line in raw.decode().split("\r\n"):
                    key, sep, value = line.partition(": ")
                    if sep:
                        action[key] = value
                self.actions.append(action)
                await self._answer(action, writer, stream)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)  # type: ignore[arg-type]

    async def _answer(self, action: dict[str, str], writer: asyncio.StreamWriter,
                      stream: bytes) -> None:
        name = action.get("Action", "").lower()
        aid = action.get("ActionID", "")
        if name == "login":
            if action.get("Secret") != self.secret:
                writer.write(encode_ami_message({"Response": "Error", "ActionID": aid,
                                                 "Message": "Authentication failed"}))
                return
            self.logins += 1
            writer.write(encode_ami_message({"Response": "Success", "ActionID": aid,
                                             "Message": "Authentication accepted"}))
            writer.write(BOOTED)
            writer.write(stream)
            await writer.drain()
        elif name == "ping":
            self.pings += 1
            if self.answer_pings:
                writer.write(encode_ami_message({"Response": "Success", "ActionID": aid,
                                                 "Ping": "Pong", "Timestamp": "1.0"}))
        elif name == "originate":
            if action.get("Async", "").lower() != "true":
                writer.close()  # what panoramisk's parser cannot survive
                return
            writer.write(encode_ami_message({"Response": "Success", "ActionID": aid,
                                             "Message": "Originate successfully queued"}))
        else:
            writer.write(encode_ami_message({"Response": "Error", "ActionID": aid,
                                             "Message": "Invalid/unknown command"}))
