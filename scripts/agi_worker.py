"""A call-path worker process of ``privnum serve --workers N`` (see ``scripts.workers``):
``python -m scripts.agi_worker`` reads the parent's settings (JSON) on stdin, serves FastAGI
on the shared port and says ``READY`` (or ``FAILED <reason>``) on stdout."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable

from routing.errors import PrivnumError
from scripts.call_path import call_path, prepare_stores
from scripts.cli_serve import configure_logging
from scripts.clock import Clock, service_clock, utc_now
from scripts.container import open_container
from scripts.front_doors import FastAgiService, attempt_writer, index_healer
from scripts.lifecycle import Lifecycle, Service
from scripts.settings import Settings
from scripts.workers import FAILED, READY


class ParentGone(Exception):
    """The ``privnum serve`` that started this worker died without stopping it."""


class Ready:
    """The last service of a worker: once every other one has started, tell the parent; then
    watch it. A parent killed outright (SIGKILL, OOM) sends no SIGTERM, and an orphaned worker
    would keep answering calls on the shared port with nobody to stop it: it drains and exits
    instead."""

    name = "parent watch"

    def __init__(self, say: Callable[[], None], parent: int) -> None:
        self._say = say
        self._parent = parent

    async def startup(self) -> None:
        self._say()

    async def ended(self) -> None:
        try:
            # A pidfd turns readable when its process exits (Linux 5.3+).
            pidfd = os.pidfd_open(self._parent)
        except ProcessLookupError:
            raise ParentGone(f"the parent process {self._parent} is gone") from None
        loop = asyncio.get_running_loop()
        gone = asyncio.Event()
        loop.add_reader(pidfd, gone.set)
        try:
            if os.getppid() == self._parent:  # else reparented before the pidfd was open
                await gone.wait()
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        raise ParentGone(f"the parent process {self._parent} is gone")

    async def shutdown(self) -> None:
        return None


async def serve_worker(settings: Settings, ready: Callable[[], None], parent: int) -> None:
    """One worker: its own container and call path (attempt writer, index healer), FastAGI on
    the shared port, until SIGTERM (which drains its calls). A ``testing.clock`` here came
    from a parent started with ``--allow-test-clock``, already as its offset: the worker runs
    on the parent's very clock."""
    clock: Clock = utc_now
    if settings.testing.clock:
        clock = service_clock(settings.testing.clock, utc_now())
    async with open_container(settings, clock=clock) as container:
        await prepare_stores(container)
        healer = container.index_healer()
        stack = call_path(container, healer=healer)
        services: list[Service] = [attempt_writer(stack.attempts)]
        if healer is not None:
            services.append(index_healer(healer))
        services += [FastAgiService(settings, stack.handler, reuse_port=True),
                     Ready(ready, parent)]
        await Lifecycle(services).serve()


def main() -> int:
    """The worker's entry point."""
    parent = os.getppid()
    try:
        settings = Settings(**json.loads(sys.stdin.read()))
    except (ValueError, PrivnumError) as exc:
        print(f"{FAILED} unreadable settings from the parent: {type(exc).__name__}",
              flush=True)
        return 1
    configure_logging(settings)

    def ready() -> None:
        print(READY, flush=True)

    try:
        asyncio.run(serve_worker(settings, ready, parent))
    except PrivnumError as exc:
        print(f"{FAILED} {exc}", flush=True)
        return 1
    except ParentGone:
        return 1  # logged by the lifecycle; the calls in flight were drained
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
