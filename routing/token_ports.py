"""The credential ports: the bearer tokens a :class:`~routing.api_ports.Principal` presents,
as issued (the secret shown once) and as listed. ``binding_store.tokens`` implements
:class:`TokenPort`; time is passed in (tz-aware UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from routing.api_ports import Principal, PrincipalKind


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    secret: str = field(repr=False)  # shown once, never stored
    kind: PrincipalKind
    shop_id: str | None
    account_id: str | None
    created_at: datetime
    shops: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenView:
    """A token as listed (never its secret); ``shops``: an auditor's granted shops."""

    token_id: str
    kind: PrincipalKind
    shop_id: str | None
    account_id: str | None
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    shops: tuple[str, ...] = ()


class TokenPort(Protocol):
    async def verify(self, token: str, now: datetime) -> Principal | None:
        """The principal of a presented bearer token, or ``None`` (unknown, revoked, expired)."""
        ...

    async def issue(self, *, now: datetime, admin: bool = False,
                    kind: PrincipalKind | None = None, shop_id: str | None = None,
                    account_id: str | None = None, shops: Sequence[str] = (), label: str = "",
                    expires_at: datetime | None = None, actor: str = "cli") -> IssuedToken:
        """A platform token (``admin`` or ``kind=PLATFORM``), a shop account's (``shop_id``
        and ``account_id``) or an auditor's (``kind=AUDITOR``, granted ``shops``)."""
        ...

    async def get(self, token_id: str) -> TokenView:
        """One token by id (``NotFound`` if unknown)."""
        ...

    async def revoke(self, token_id: str, *, now: datetime, actor: str = "cli") -> None: ...

    async def list(self, shop_id: str | None = None) -> list[TokenView]: ...
