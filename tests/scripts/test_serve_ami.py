"""``privnum serve`` with AMI on, as a real process against a fake AMI server on a real socket:
``/healthz`` and ``/metrics`` tell the truth about AMI (connected: ok and
``privnum_ami_connected 1``; down: degraded and 0), an outage is logged
once when it starts and once when it ends, and a missing safety-net CSV is said at start-up."""

from __future__ import annotations

import asyncio
import inspect
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.agi.fake_ami import FakeAmi
from tests.scripts import test_serve_process as serve_process
from tests.scripts.test_serve_process import PRIVNUM, free_port

SECRET = "s3cret-ami"
# The provisioned data dir of the serve tests (schema, keys, a shop, a binding).
env = serve_process.env
provisioned = serve_process.provisioned


class Output:
    """stderr of the process, collected line by line while the test runs."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append(line.decode(errors="replace"))

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    async def finish(self) -> str:
        await self._task
        return "".join(self.lines)


async def _until(predicate: Callable[[], Any], what: str, seconds: float = 20.0) -> None:
    try:
        async with asyncio.timeout(seconds):
            while True:
                value = predicate()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_healthz_reports_ami_truthfully_and_an_outage_is_logged_once(
        provisioned: dict[str, str], tmp_path: Path) -> None:
    fake = FakeAmi(secret=SECRET)
    ami_port = await fake.start()
    api_port = free_port()
    serve_env = {**provisioned, "PRIVNUM_AMI__ENABLED": "true", "PRIVNUM_AMI__PORT": str(ami_port),
           "PRIVNUM_AMI__SECRET": SECRET, "PRIVNUM_AMI__RECONNECT_DELAY_SECONDS": "0.05",
           "PRIVNUM_AMI__RECONNECT_MAX_DELAY_SECONDS": "0.2", "PRIVNUM_API__ENABLED": "true",
           "PRIVNUM_API__PORT": str(api_port), "PRIVNUM_LOG_LEVEL": "DEBUG",
           "PRIVNUM_ASTERISK__LOG_DIR": str(tmp_path / "no-asterisk-on-this-host")}
    proc = await asyncio.create_subprocess_exec(*PRIVNUM, "serve", env=serve_env,
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    out = Output(proc.stderr)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as http:

            async def ami_check() -> dict[str, Any]:
                try:
                    body = (await http.get("/healthz")).json()
                except httpx.TransportError:
                    return {}
                checks = {c["name"]: c for c in body["checks"]}
                return {"status": body["status"], "ami": checks["ami"]["ok"]}

            async def health_is(status: str, ami: bool) -> bool:
                return await ami_check() == {"status": status, "ami": ami}

            async def connected_gauge() -> str:
                text = (await http.get("/metrics")).text
                return next((line for line in text.splitlines()
                             if line.startswith("privnum_ami_connected ")), "")

            await _until(lambda: out.count("AMI connected to"), "the AMI login")
            await _until(lambda: health_is("ok", True), "healthz ok while connected")
            assert await connected_gauge() == "privnum_ami_connected 1.0"
            fake.drop()
            await fake.close()  # Asterisk goes away and stays away for a while
            await _until(lambda: health_is("degraded", False), "healthz degraded")
            assert await connected_gauge() == "privnum_ami_connected 0.0"
            await _until(lambda: out.count("still not available") >= 3, "several attempts")
            fake = FakeAmi(secret=SECRET)
            await fake.start(ami_port)
            await _until(lambda: out.count("AMI connected to") == 2, "the reconnect")
            await _until(lambda: health_is("ok", True), "healthz ok again")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        log = await out.finish()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await fake.close()
    warnings = [line.split(" WARNING ", 1)[1].strip() for line in out.lines
                if " WARNING " in line]
    # Said once, at start-up: no CSV to reconcile from. The outage: once when it started
    # (every failed attempt after that at DEBUG only), and its end once, at INFO.
    assert [w for w in warnings if "safety-net CDR file" in w or "AMI" in w] == [
        w for w in warnings if "safety-net CDR file" in w] + [
        f"privnum.ami AMI connection to 127.0.0.1:{ami_port} lost (closed by the peer); "
        "reconnecting with back-off"], warnings
    assert len(warnings) == 2, warnings
    assert out.count("AMI connected to") == 2
    assert SECRET not in log
