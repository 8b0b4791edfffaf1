"""Does a webhook URL's host resolve? (``routing.webhook_ports.HostResolver``, asked when a
subscription is added.)"""

from __future__ import annotations

import asyncio
import socket


class DnsResolver:
    def __init__(self, timeout: float = 3.0) -> None:
        self._timeout = timeout

    async def resolves(self, host: str, port: int) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                found = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError, UnicodeError, ValueError):
            return False
        return bool(found)
