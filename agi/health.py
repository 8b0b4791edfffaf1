"""The FastAGI service's health for ``/healthz`` and the console: a real AGI exchange.

The probe connects to the FastAGI port as Asterisk would and asks for the health script; the
worker that takes the connection (with several worker processes the kernel picks one) sends
one ``NOOP`` command, the probe answers it, and the worker hangs up. A port that accepts but
whose worker is stuck (a blocked event loop still has its socket accepting connections) fails
the probe, and so does another service on the port. The health script touches no store and
sets no channel variable; it is logged like any call, at DEBUG when it goes well."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from agi.session import AgiSession
from routing.health_ports import HealthStatus

HEALTH_SCRIPT = "privnum-health"
HEALTH_NOOP = f"NOOP {HEALTH_SCRIPT}"


async def answer_health(session: AgiSession) -> None:
    """The health script's handler: one command, so the probe sees the worker act."""
    await session.command(HEALTH_NOOP)


@dataclass
class FastAgiProbe:
    host: str
    port: int
    workers: int = 1
    timeout: float = 1.5
    name: str = "fastagi"
    # Not required: the HTTP API (and this report) still work; Asterisk's calls do not.
    required: bool = False

    async def check(self) -> HealthStatus:
        where = f"{self.host}:{self.port}"
        try:
            async with asyncio.timeout(self.timeout):
                detail = await self._exchange()
        except TimeoutError:
            return self._down(f"{where}: no AGI answer within {self.timeout:g}s")
        except (ConnectionError, OSError) as exc:
            return self._down(f"{where}: {exc.strerror or type(exc).__name__}")
        if detail:
            return self._down(f"{where}: {detail}")
        workers = f" ({self.workers} worker processes share it)" if self.workers > 1 else ""
        return HealthStatus(name=self.name, ok=True, required=self.required,
                            detail=f"answered on {where}{workers}")

    def _down(self, detail: str) -> HealthStatus:
        return HealthStatus(name=self.name, ok=False, required=self.required, detail=detail)

    async def _exchange(self) -> str:
        """'' when the worker ran the health script, else what went wrong."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            env = (f"agi_network: yes\nagi_network_script: {HEALTH_SCRIPT}\n"
                   f"agi_request: agi://{self.host}:{self.port}/{HEALTH_SCRIPT}\n"
                   "agi_channel: privnum/health\n\n")
            writer.write(env.encode())
            await writer.drain()
            line = (await reader.readline()).decode(errors="replace").strip()
            if line != HEALTH_NOOP:
                return "not privnum's FastAGI (unexpected answer)" if line \
                    else "closed without running the health script"
            writer.write(b"200 result=0\n")
            await writer.drain()
            await reader.read()  # the worker hangs up when its handler returns
            return ""
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
