"""The console's session: the credential a person signed in with, encrypted into a cookie.

The cookie holds the token itself (encrypted and authenticated with Fernet, so it can be
neither read nor forged without the server's key) and when the session ends; every request
presents the token to the same use case the API's bearer check calls, so a revoked or expired
credential ends the session as it ends API requests (``api.token_cache_seconds``) and the
console never decides a scope of its own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken

COOKIE = "privnum_console"


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: float  # POSIX seconds (the server's clock)


class SessionCodec:
    def __init__(self, key: bytes, seconds: int) -> None:
        self._fernet = Fernet(key)
        self.seconds = seconds

    def issue(self, token: str, now: datetime) -> str:
        body = {"t": token, "e": now.timestamp() + self.seconds}
        return self._fernet.encrypt(json.dumps(body).encode()).decode()

    def read(self, cookie: str | None, now: datetime) -> Session | None:
        """The session in ``cookie``; ``None`` when there is none, it was tampered with or
        it has ended."""
        if not cookie:
            return None
        try:
            body = json.loads(self._fernet.decrypt(cookie.encode()))
            session = Session(token=str(body["t"]), expires_at=float(body["e"]))
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None
        return session if now.timestamp() < session.expires_at else None
