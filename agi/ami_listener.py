"""The AMI listener: ``Cdr`` events -> call records, batched, with back-pressure.

* One reader (panoramisk's protocol) parses events; each ``Cdr`` that is a call record (see
  ``routing.cdr.CdrEvent.is_call_record``) is appended to a bounded buffer. At ``queue_max``
  the socket stops being read (``pause_reading``) until the writer has drained it to half:
  Asterisk's side buffers, our memory does not grow.
* One writer task flushes the buffer to the :class:`~routing.cdr_ports.CdrSink` every
  ``batch_size`` records or ``batch_seconds``, retrying while the store is unavailable.
* A watchdog pings every ``ping_interval``; a missing Pong forces a reconnect.
* Reconnects back off exponentially with jitter (``reconnect_delay`` doubling up to
  ``reconnect_max_delay``); the outage is logged once when it starts and once when it ends.
* After every (re)connect the reconcile callback runs (AMI has no replay: whatever happened
  while we were away comes from Asterisk's own CDR file).
* :meth:`AmiListener.stop` closes the connection and flushes everything buffered.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from agi.ami_backoff import Backoff, LinkState
from agi.ami_cdr import cdr_from_ami
from agi.ami_connection import AmiConnection
from routing.cdr import CdrEvent
from routing.cdr_ports import CdrSink
from routing.errors import AmiUnavailable, CdrFormatError, StoreUnavailable
from routing.number_classes import DEFAULT_NUMBER_CLASSES, NumberClasses

log = logging.getLogger("privnum.ami")

Reconcile = Callable[[str], Awaitable[int]]
"""Called with the Asterisk system name after each (re)connect; returns records imported."""


@dataclass(frozen=True)
class AmiListenerConfig:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "privnum"
    secret: str = ""
    events: str = "cdr,system"
    zone: tzinfo = UTC
    system_name: str = ""
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    login_timeout: float = 10.0
    reconnect_delay: float = 2.0  # first delay after a failure; doubles up to the cap
    reconnect_max_delay: float = 60.0
    batch_size: int = 200
    batch_seconds: float = 0.5
    queue_max: int = 10_000
    store_retry_seconds: float = 1.0
    number_classes: NumberClasses = DEFAULT_NUMBER_CLASSES  # reads X in fail-path CDRs


@dataclass
class ListenerStats:
    events: int = 0
    cdr_events: int = 0
    records_queued: int = 0
    stored: int = 0
    batches: int = 0
    bad_cdrs: int = 0
    connects: int = 0
    connect_failures: int = 0
    reconciles: int = 0
    reconciled: int = 0
    watchdog_reconnects: int = 0
    queue_peak: int = 0
    pauses: int = 0
    store_errors: int = 0
    refused: int = 0  # records the call log refused (logged one by one)
    last_error: str = field(default="", repr=False)


class AmiListener:
    """Implements ``routing.cdr_ports.Originator`` too (click-to-call)."""

    def __init__(self, config: AmiListenerConfig, sink: CdrSink,
                 reconcile: Reconcile | None = None, *,
                 observe_lag: Callable[[float], None] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.config = config
        self.sink = sink
        self.reconcile = reconcile
        # Ingest lag: a call's end (its CDR) to the moment it is in the call log.
        self._observe_lag = observe_lag
        self._clock = clock
        self.stats = ListenerStats()
        self.connected = asyncio.Event()
        self.system_name = config.system_name
        self._buffer: deque[CdrEvent] = deque()
        self._has_items = asyncio.Event()
        self._stopping = asyncio.Event()
        self._paused = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ami: AmiConnection | None = None
        self._backoff = Backoff(config.reconnect_delay, config.reconnect_max_delay)
        self._link = LinkState(f"{config.host}:{config.port}", log)
        self._lost_reason = ""

    # ---- public

    async def run(self) -> None:
        """Connect, listen, reconnect, until :meth:`stop`; then flush and return."""
        writer = asyncio.create_task(self._writer(), name="ami-cdr-writer")
        try:
            while not self._stopping.is_set():
                if await self._session():
                    self._backoff.reset()  # it worked: a new outage starts from the minimum
                if not self._stopping.is_set():
                    await self._sleep(self._backoff.next())
        finally:
            self._stopping.set()
            self._has_items.set()
            await writer
            await self._cancel_tasks()

    async def stop(self) -> None:
        """Stop reading; :meth:`run` returns once everything buffered is stored."""
        self._stopping.set()
        self._has_items.set()
        if self._ami is not None:
            self._ami.force_close()

    async def originate(self, channel: str, *, context: str, exten: str, priority: int = 1,
                        caller_id: str = "", timeout_ms: int = 30_000,
                        variables: Mapping[str, str] | None = None) -> str:
        if self._ami is None or not self.connected.is_set():
            raise AmiUnavailable("not connected to Asterisk AMI")
        return await self._ami.originate(channel, context=context, exten=exten,
                                         priority=priority, caller_id=caller_id,
                                         timeout_ms=timeout_ms, variables=variables)

    @property
    def is_connected(self) -> bool:
        return self.connected.is_set()

    @property
    def queued(self) -> int:
        return len(self._buffer)

    # ---- one connection

    async def _session(self) -> bool:
        """One connection, until it is lost; False if it could not be opened."""
        cfg = self.config
        ami = AmiConnection(host=cfg.host, port=cfg.port, username=cfg.username,
                            secret=cfg.secret, events=cfg.events)
        ami.on_event = self._count
        ami.register_event("Cdr", self._on_cdr)
        self._ami = ami
        self._paused = False  # a fresh socket reads; events may arrive with FullyBooted
        try:
            await ami.open(cfg.login_timeout)
        except (OSError, TimeoutError, AmiUnavailable) as exc:
            self.stats.last_error = str(exc) or type(exc).__name__
            self.stats.connect_failures += 1
            self._link.failed(self.stats.last_error)
            ami.close()
            ami.fail_awaiting()
            await ami.drain_tasks()
            return False
        self.stats.connects += 1
        self._lost_reason = ""
        self.connected.set()
        self._link.up()
        self._spawn(self._run_reconcile(), "ami-reconcile")
        watchdog = asyncio.create_task(self._watchdog(ami), name="ami-watchdog")
        try:
            await ami.lost.wait()
        finally:
            self.connected.clear()
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
            ami.close()
            ami.fail_awaiting()
            await ami.drain_tasks()
            if not self._stopping.is_set():
                self._link.lost(self._lost_reason or "closed by the peer")
        return True

    async def _watchdog(self, ami: AmiConnection) -> None:
        while not ami.lost.is_set():
            await self._sleep(self.config.ping_interval)
            if ami.lost.is_set() or self._stopping.is_set():
                return
            if self._paused:
                continue  # not reading the socket: a Pong could not be seen
            if not await ami.check_alive(self.config.ping_timeout):
                self._lost_reason = f"no answer to Ping within {self.config.ping_timeout:g} s"
                self.stats.last_error = self._lost_reason
                self.stats.watchdog_reconnects += 1
                ami.force_close()
                return

    async def _run_reconcile(self) -> None:
        if self.reconcile is None:
            return
        try:
            imported = await self.reconcile(self.system_name)
        except Exception as exc:
            log.error("CDR reconcile failed: %s", exc)
            self.stats.last_error = f"reconcile: {exc}"
            return
        self.stats.reconciles += 1
        self.stats.reconciled += imported
        if imported:
            log.warning("reconcile imported %d call record(s) missed by AMI", imported)

    # ---- reader side (called synchronously from the protocol)

    def _count(self, _event: Any) -> None:
        self.stats.events += 1

    def _on_cdr(self, _manager: Any, event: Mapping[str, str]) -> None:
        self.stats.cdr_events += 1
        try:
            cdr = cdr_from_ami(event, self.config.zone, self.system_name,
                               self.config.number_classes)
        except CdrFormatError as exc:
            self.stats.bad_cdrs += 1
            log.warning("unreadable Cdr event skipped: %s", exc)
            return
        if not cdr.is_call_record:
            return
        if not self.system_name and cdr.system_name:
            self.system_name = cdr.system_name
        self._buffer.append(cdr)
        self.stats.records_queued += 1
        self.stats.queue_peak = max(self.stats.queue_peak, len(self._buffer))
        self._has_items.set()
        if len(self._buffer) >= self.config.queue_max and not self._paused:
            self._paused = True
            self.stats.pauses += 1
            if self._ami is not None:
                self._ami.pause_reading()

    # ---- writer side

    async def _writer(self) -> None:
        cfg = self.config
        while True:
            await self._has_items.wait()
            self._has_items.clear()
            if not self._buffer and self._stopping.is_set():
                return
            if len(self._buffer) < cfg.batch_size and not self._stopping.is_set():
                await self._sleep(cfg.batch_seconds)  # let the batch fill
            while self._buffer:
                batch = self._take(cfg.batch_size)
                await self._store(batch)
                self._maybe_resume()
            if self._stopping.is_set() and not self._buffer:
                return

    def _take(self, size: int) -> list[CdrEvent]:
        batch: list[CdrEvent] = []
        while self._buffer and (len(batch) < size
                                or self._buffer[0].key == batch[-1].key):  # keep forks together
            batch.append(self._buffer.popleft())
        return batch

    async def _store(self, batch: list[CdrEvent]) -> None:
        """Store ``batch``, retrying while the call log is unavailable. A record the store
        refuses (a row-level error) is isolated by halving, logged and counted; the others
        are stored. Forks of one channel stay together."""
        chunks = [_by_channel(batch)]
        while chunks:
            groups = chunks.pop()
            chunk = [event for group in groups for event in group]
            try:
                self.stats.stored += await self.sink.write_batch(chunk, "ami")
                self.stats.batches += 1
                self._lag(chunk)
            except StoreUnavailable as exc:
                self.stats.store_errors += 1
                self.stats.last_error = str(exc)
                log.warning("call log unavailable (%s); retrying %d record(s)", exc, len(chunk))
                chunks.append(groups)
                await asyncio.sleep(self.config.store_retry_seconds)
            except Exception as exc:
                if len(groups) > 1:
                    half = len(groups) // 2
                    chunks += [groups[half:], groups[:half]]
                    continue
                self.stats.refused += 1
                self.stats.last_error = f"refused: {type(exc).__name__}"
                log.error("call record uniqueid=%s refused by the call log, not stored (%s)",
                          chunk[0].uniqueid, type(exc).__name__)

    def _lag(self, stored: list[CdrEvent]) -> None:
        if self._observe_lag is None:
            return
        now = self._clock()
        ends: dict[tuple[str, str], datetime] = {}
        for event in stored:  # forks of one channel's CDR are one record: its last end
            ends[event.key] = max(event.end, ends.get(event.key, event.end))
        for end in ends.values():
            self._observe_lag(max(0.0, (now - end).total_seconds()))

    def _maybe_resume(self) -> None:
        if self._paused and len(self._buffer) <= self.config.queue_max // 2:
            self._paused = False
            if self._ami is not None:
                self._ami.resume_reading()

    # ---- helpers

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when stopping."""
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            pass

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _by_channel(events: list[CdrEvent]) -> list[list[CdrEvent]]:
    """Consecutive events of one channel (forks of its CDR) grouped."""
    groups: list[list[CdrEvent]] = []
    for event in events:
        if groups and groups[-1][-1].key == event.key:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups
