"""panoramisk's ``Manager`` (1.4), made safe for a long-running service.

What this fixes, and how:

* ``connect()`` returns before login completes: :meth:`AmiConnection.open` awaits the TCP
  connection, the ``Login`` response and the ``FullyBooted`` event (the AMI user therefore
  needs the ``system`` read class, which is also what releases actions panoramisk queued while
  disconnected).
* panoramisk reconnects by itself on ``call_later`` with unreferenced tasks and never checks
  Ping replies: here a lost connection only *signals* (:attr:`lost`); the listener owns the
  reconnect loop and a watchdog that awaits each Ping reply (:meth:`ping`).
* coroutine callbacks are started with ``ensure_future`` and no kept reference: :meth:`dispatch`
  keeps every task until it is done (no lost tasks, no "Task was destroyed" warnings).
* ``Originate`` without ``Async: true`` raises inside the library and drops the connection:
  :meth:`originate` always sends ``Async: true`` and waits for the first response only.
* actions queued while disconnected would be replayed after a reconnect (a click-to-call
  placed minutes late): they are failed instead (:meth:`fail_awaiting`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol

from routing.errors import AmiUnavailable

log = logging.getLogger("privnum.ami")


class AmiConnection(Manager):  # type: ignore[misc]
    def __init__(self, *, host: str, port: int, username: str, secret: str,
                 events: str = "cdr,system") -> None:
        super().__init__(host=host, port=port, username=username, secret=secret,
                         events=events, ping_delay=3600, ping_interval=3600,
                         reconnect_timeout=3600, forgetable_actions=("ping", "login"))
        self.lost = asyncio.Event()
        self.booted = asyncio.Event()
        self._tasks: set[asyncio.Future[Any]] = set()
        self.on_event: Callable[[Any], None] | None = None
        self.register_event("FullyBooted", self._fully_booted)

    # ---- lifecycle

    async def open(self, within: float) -> None:
        """Connect, log in and wait for FullyBooted, all within ``within`` seconds."""
        self.loop = asyncio.get_running_loop()
        self.lost.clear()
        self.booted.clear()
        async with asyncio.timeout(within):
            transport, protocol = await self.loop.create_connection(
                AMIProtocol, self.config["host"], self.config["port"])
            done: asyncio.Future[tuple[Any, Any]] = self.loop.create_future()
            done.set_result((transport, protocol))
            self.connection_made(done)  # panoramisk: wires the protocol and sends Login
            login = self.authenticated_future
            if login is None:  # pragma: no cover - username is always configured
                raise AmiUnavailable("no login sent")
            response = await self._unless_lost(login)
            if not response.success:
                self.close()
                raise AmiUnavailable(f"AMI login refused: {response.get('Message', '')}")
            await self._unless_lost(self.booted.wait())

    async def _unless_lost(self, awaitable: Any) -> Any:
        """Await ``awaitable`` unless the connection is lost (or closed) first."""
        work = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            await asyncio.wait((work, lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            await asyncio.gather(lost, return_exceptions=True)
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            raise AmiUnavailable("AMI connection closed during login")
        return work.result()

    def connection_lost(self, exc: Any) -> None:
        """Called by the protocol when the socket closes: signal, never self-reconnect."""
        self._connected = False
        self.authenticated = False
        pinger: Any = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            setattr(self, "pinger", None)  # noqa: B010 - untyped base attribute
        self.lost.set()

    def ping(self) -> None:
        """panoramisk's unchecked pinger is disabled; see :meth:`check_alive`."""

    def force_close(self) -> None:
        """Drop the connection (e.g. the watchdog saw no Pong) and signal it as lost."""
        self.close()
        self.lost.set()

    async def check_alive(self, within: float) -> bool:
        """Send a Ping and wait for its reply."""
        if self.protocol is None or self.lost.is_set():
            return False
        try:
            async with asyncio.timeout(within):
                response = await self.send_action({"Action": "Ping"})
        except TimeoutError:
            return False
        return bool(getattr(response, "success", False))

    def fail_awaiting(self) -> None:
        """Fail actions panoramisk queued while disconnected, instead of replaying them."""
        while self.awaiting_actions:
            action = self.awaiting_actions.popleft()
            if not action.future.done():
                action.future.set_exception(AmiUnavailable("AMI connection lost"))
                action.future.exception()  # retrieved: no "never retrieved" warning

    async def drain_tasks(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- events

    def dispatch(self, event: Any) -> list[str]:
        if self.on_event is not None:
            self.on_event(event)
        matches: list[str] = []
        event.manager = self
        for pattern, regexp in self.patterns:
            if regexp.match(event.event) is None:
                continue
            matches.append(pattern)
            for callback in self.callbacks[pattern]:
                result = callback(self, event)
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._task_done)
        return matches

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("AMI callback failed: %s", task.exception())

    def _fully_booted(self, _manager: Any, _event: Any) -> None:
        self.booted.set()

    # ---- actions

    def pause_reading(self) -> None:
        if self.protocol is not None and not self.protocol.closed:
            self.protocol.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.protocol is not None and not self.protocol.closed:
            self.protocol.transport.resume_reading()

    async def originate(self, channel: str, *, context: str, exten: str, priority: int = 1,
                        caller_id: str = "", timeout_ms: int = 30_000,
                        variables: Mapping[str, str] | None = None,
                        response_timeout: float = 5.0) -> str:
        if not self.authenticated or self.lost.is_set():
            raise AmiUnavailable("not connected to Asterisk AMI")
        action: dict[str, Any] = {
            "Action": "Originate", "Channel": channel, "Context": context, "Exten": exten,
            "Priority": str(priority), "Timeout": str(timeout_ms), "Async": "true"}
        if caller_id:
            action["CallerID"] = caller_id
        if variables:
            action["Variable"] = [f"{k}={v}" for k, v in variables.items()]
        sent = Action(action, as_list=False)
        try:
            async with asyncio.timeout(response_timeout):
                response = await self.send_action(sent, as_list=False)
        except TimeoutError as exc:
            raise AmiUnavailable("Asterisk did not answer the Originate") from exc
        if not response.success:
            raise AmiUnavailable(f"Originate refused: {response.get('Message', '')}")
        return str(sent.action_id)
