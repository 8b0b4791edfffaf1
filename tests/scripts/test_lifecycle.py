"""The one lifecycle owner: startup in order, stop on a signal or a dead service, shutdown in
reverse; a failed start unwinds what had started. (Real processes: test_serve_process.py.)"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from scripts.lifecycle import Lifecycle, Resource, Task


class Part:
    def __init__(self, name: str, log: list[str], *, fail_start: bool = False) -> None:
        self.name = name
        self.log = log
        self.fail_start = fail_start
        self.dead = asyncio.Event()
        self.up = asyncio.Event()

    async def startup(self) -> None:
        if self.fail_start:
            raise OSError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")
        self.up.set()

    async def ended(self) -> None:
        await self.dead.wait()
        raise RuntimeError(f"{self.name} died")

    async def shutdown(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_stop_event_shuts_down_in_reverse_order() -> None:
    log: list[str] = []
    stop = asyncio.Event()
    agi = Part("agi", log)
    life = Lifecycle([Part("stores", log), Part("api", log), agi], stop=stop)
    serving = asyncio.create_task(life.serve())
    await agi.up.wait()
    assert log == ["start stores", "start api", "start agi"]
    stop.set()
    await asyncio.wait_for(serving, 5)
    assert log[3:] == ["stop agi", "stop api", "stop stores"]


async def test_a_failed_start_unwinds_what_started_and_raises() -> None:
    log: list[str] = []
    life = Lifecycle([Part("stores", log), Part("api", log, fail_start=True), Part("agi", log)])
    with pytest.raises(OSError, match="api cannot start"):
        await life.serve()
    assert log == ["start stores", "stop stores"]


async def test_a_dead_service_stops_everything_loudly(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    ami = Part("ami", log)
    agi = Part("agi", log)
    life = Lifecycle([Part("stores", log), ami, agi])
    serving = asyncio.create_task(life.serve())
    await agi.up.wait()
    ami.dead.set()
    with pytest.raises(RuntimeError, match="ami died"):
        await asyncio.wait_for(serving, 5)
    assert log[3:] == ["stop agi", "stop ami", "stop stores"]
    assert "ami failed: ami died" in caplog.text


async def test_sigterm_is_a_graceful_stop_and_handlers_are_restored() -> None:
    log: list[str] = []
    before = signal.getsignal(signal.SIGTERM)
    agi = Part("agi", log)
    life = Lifecycle([agi])
    serving = asyncio.create_task(life.serve())
    await agi.up.wait()  # signal handlers are installed before startup
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(serving, 5)
    assert log == ["start agi", "stop agi"]
    assert signal.getsignal(signal.SIGTERM) == before


async def test_run_does_one_piece_of_work_between_startup_and_shutdown() -> None:
    log: list[str] = []
    opened: list[str] = []

    async def open_() -> None:
        opened.append("open")

    async def close() -> None:
        opened.append("close")

    async def work() -> int:
        log.append("work")
        return 7

    life = Lifecycle([Resource("stores", open_, close)], stop_signals=(),
                     ignore_signals=(signal.SIGHUP,))
    assert await life.run(work) == 7
    assert opened == ["open", "close"] and log == ["work"]
    assert signal.getsignal(signal.SIGHUP) != signal.SIG_IGN


async def test_a_task_service_is_stopped_and_awaited() -> None:
    stopping, running = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def run() -> None:
        running.set()
        await stopping.wait()
        finished.append("drained")

    async def stop() -> None:
        stopping.set()

    stop_all = asyncio.Event()
    life = Lifecycle([Task("listener", run, stop)], stop=stop_all)
    serving = asyncio.create_task(life.serve())
    await running.wait()
    stop_all.set()
    await asyncio.wait_for(serving, 5)
    assert finished == ["drained"]
