"""The one owner of a process's lifetime and signals: ``privnum serve``, ``api``, ``ami
listen`` and ``agi`` all run through :class:`Lifecycle`.

Modelled on uvicorn's ``Server``: :meth:`Lifecycle.serve` is ``capture_signals`` around
``startup`` → ``main_loop`` → ``shutdown``. Startup starts the services in order and stops at
the first that fails (those already started are shut down again, the error is raised: one clear
line for the CLI). The main loop waits until SIGTERM/SIGINT (or ``stop``) or until a service
ends on its own, which stops everything, loudly. Shutdown runs in reverse order, so the front
doors drain before the stores they use close. uvicorn itself runs inside as one service with
its own signal handling switched off (``scripts.front_doors``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Protocol, TypeVar

log = logging.getLogger("privnum.serve")
T = TypeVar("T")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Service(Protocol):
    """One part of a running process (a listener, a writer, the stores)."""

    name: str

    async def startup(self) -> None:
        """Start (bind, connect, spawn its task); raise if it cannot."""
        ...

    async def ended(self) -> None:
        """Return (or raise) only if the service stops on its own; never, while healthy."""
        ...

    async def shutdown(self) -> None:
        """Stop taking work, finish what is in flight, release what it holds."""
        ...


class Lifecycle:
    def __init__(self, services: Sequence[Service], *, stop: asyncio.Event | None = None,
                 stop_signals: Sequence[signal.Signals] = STOP_SIGNALS,
                 ignore_signals: Sequence[signal.Signals] = ()) -> None:
        self.services = list(services)
        self.should_exit = stop or asyncio.Event()
        self._stop_signals = tuple(stop_signals)
        self._ignore_signals = tuple(ignore_signals)
        self._started: list[Service] = []
        self.failure: BaseException | None = None

    async def serve(self) -> None:
        """Run until stopped (a signal, ``stop``, or a service ending), then shut down."""
        with self.capture_signals():
            try:
                await self.startup()
                await self.main_loop()
            finally:
                await self.shutdown()
        if self.failure is not None:
            raise self.failure

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Start the services, run ``work`` (one call, one command), shut down."""
        with self.capture_signals():
            try:
                await self.startup()
                return await work()
            finally:
                await self.shutdown()

    async def startup(self) -> None:
        for service in self.services:
            await service.startup()
            self._started.append(service)

    async def main_loop(self) -> None:
        stopping = asyncio.create_task(self.should_exit.wait(), name="stop")
        watching = {asyncio.create_task(self._watch(s), name=f"watch-{s.name}"): s
                    for s in self._started}
        try:
            await asyncio.wait({stopping, *watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stopping, *watching):
                task.cancel()
            await asyncio.gather(stopping, *watching, return_exceptions=True)

    async def _watch(self, service: Service) -> None:
        try:
            await service.ended()
        except Exception as exc:  # a dead service stops the process, loudly
            log.error("%s failed: %s", service.name, exc)
            self.failure = self.failure or exc
        else:
            log.error("%s stopped on its own; shutting down", service.name)

    async def shutdown(self) -> None:
        self.should_exit.set()
        while self._started:
            service = self._started.pop()
            try:
                await service.shutdown()
            except Exception as exc:
                log.error("%s did not shut down cleanly: %s", service.name, exc)
                self.failure = self.failure or exc

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT set ``should_exit`` (graceful); ignored signals (SIGHUP for an AGI
        script, whose channel may hang up while the store opens) do nothing."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in self._ignore_signals}
        for sig in self._stop_signals:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.should_exit.set)
                installed.append(sig)
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class Task:
    """A :class:`Service` around a coroutine that runs until told to stop (``stop``)."""

    def __init__(self, name: str, run: Callable[[], Awaitable[None]],
                 stop: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._run = run
        self._stop = stop
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)  # type: ignore[arg-type]

    async def ended(self) -> None:
        assert self._task is not None
        await asyncio.shield(self._task)

    async def shutdown(self) -> None:
        if self._task is None:
            return
        await self._stop()
        await self._task


class Resource:
    """A :class:`Service` for something that is only opened and closed (the stores)."""

    def __init__(self, name: str, open_: Callable[[], Awaitable[None]],
                 close: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._open = open_
        self._close = close

    async def startup(self) -> None:
        await self._open()

    async def ended(self) -> None:
        await asyncio.Event().wait()  # a resource does not end on its own

    async def shutdown(self) -> None:
        await self._close()
