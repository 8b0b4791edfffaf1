"""Who may do what: the rules every use case applies to the :class:`Principal` acting.

A credential carries scopes (:class:`Scope`) and covers shops:

- platform (and an operator at the CLI): every scope, every shop;
- a shop's main account (or the platform on its behalf): ``shop``, ``shop:manage``,
  ``calls:read`` on its own shop;
- a sub-account (or the platform on its behalf): ``shop``, ``calls:read`` on its own shop;
- an auditor: ``calls:read`` and ``recordings:read`` on the shops it is granted (and their
  exports, one shop at a time).

``recordings:read`` (the recorded calls' audio) is the auditor's alone: no shop credential,
and not the platform's or an operator's either, holds it.

A credential without the scope an action needs is refused naming the scope (HTTP 403). An
object found by id in a shop the credential does not cover is "not found", so ids do not leak
between shops.
"""

from __future__ import annotations

from enum import StrEnum

from routing.api_ports import Principal, PrincipalKind, ShopPort, acting_for
from routing.errors import NotFound, PermissionDenied, ServiceNotEnabled
from routing.model import AccountRole


class Scope(StrEnum):
    PLATFORM = "platform"  # tokens, orders, shop levels, phone review, webhooks, the pool
    SHOP_MANAGE = "shop:manage"  # enable/disable, time zone, sub-accounts, caller numbers
    SHOP = "shop"  # service status, caller list, reveal, bindings
    CALLS_READ = "calls:read"  # the call log and its exports
    RECORDINGS_READ = "recordings:read"  # recorded calls' audio (auditors only)


_ALL = frozenset(Scope) - {Scope.RECORDINGS_READ}
_MAIN = frozenset({Scope.SHOP, Scope.SHOP_MANAGE, Scope.CALLS_READ})
_SUB = frozenset({Scope.SHOP, Scope.CALLS_READ})
_AUDITOR = frozenset({Scope.CALLS_READ, Scope.RECORDINGS_READ})


def scopes_of(who: Principal) -> frozenset[Scope]:
    if who.kind in (PrincipalKind.PLATFORM, PrincipalKind.OPERATOR):
        return _ALL
    if who.kind is PrincipalKind.AUDITOR:
        return _AUDITOR
    # An account token before its account exists may be the future main account enabling
    # the service; main_only still asks for the main role for everything else.
    return _SUB if who.role is AccountRole.SUB else _MAIN


def covers(who: Principal, shop_id: str) -> bool:
    """Whether ``who``'s credential reaches ``shop_id`` at all."""
    if who.is_admin:
        return True
    if who.kind is PrincipalKind.AUDITOR:
        return shop_id in who.shops
    return who.shop_id == shop_id


def require(who: Principal, scope: Scope, action: str, shop_id: str | None = None) -> None:
    """``who`` holds ``scope`` (else 403 naming it) and, if given, covers ``shop_id``."""
    if scope not in scopes_of(who):
        raise PermissionDenied(f"missing scope '{scope}': this credential may not {action}")
    if shop_id is not None and not covers(who, shop_id):
        raise PermissionDenied(f"scope '{scope}' of this token does not cover shop {shop_id} "
                               "(the token belongs to another shop)")


def in_shop(who: Principal, shop_id: str, scope: Scope = Scope.SHOP,
            action: str = "act on this shop") -> None:
    """``who`` may act on ``shop_id`` with ``scope``."""
    require(who, scope, action, shop_id)


def owned(who: Principal, shop_id: str, what: str) -> None:
    """Like :func:`in_shop` for an object found by id: another shop's object is not found."""
    require(who, Scope.SHOP, f"act on a {what}")
    if not covers(who, shop_id):
        raise NotFound(f"{what} not found")


def main_only(who: Principal, shop_id: str, action: str) -> None:
    """Only the shop's main account (or the platform, on its behalf) may ``action``."""
    if who.kind is PrincipalKind.ACCOUNT and who.role is not AccountRole.MAIN:
        raise PermissionDenied(
            f"missing scope '{Scope.SHOP_MANAGE}': only the shop's main account may {action}")
    require(who, Scope.SHOP_MANAGE, action, shop_id)


def read_calls(who: Principal, shop_id: str) -> None:
    """The shop's call log and exports: its accounts, an auditor granted it, the platform."""
    require(who, Scope.CALLS_READ, "read the call log", shop_id)


def read_recording(who: Principal, shop_id: str) -> None:
    """A recorded call's audio: an auditor granted the shop, nobody else (403 naming the
    scope for everyone without it)."""
    require(who, Scope.RECORDINGS_READ, "retrieve recorded calls", shop_id)


def manage_webhooks(who: Principal) -> None:
    """Webhook subscriptions (the platform's receivers, every shop's events) are managed by
    the platform's credential or an operator, never by a shop account or an auditor."""
    require(who, Scope.PLATFORM, "manage webhook subscriptions")


def platform_only(who: Principal, action: str) -> None:
    if Scope.PLATFORM not in scopes_of(who):
        raise PermissionDenied(f"missing scope '{Scope.PLATFORM}': only the platform may "
                               f"{action}")


def shop_account(who: Principal, action: str) -> tuple[str, str]:
    """(shop, account) of a shop account's principal (or the platform on its behalf); the
    platform alone cannot ``action``."""
    if who.kind is not PrincipalKind.ACCOUNT or who.account_id is None or who.shop_id is None:
        if who.kind is PrincipalKind.AUDITOR:
            raise PermissionDenied(f"missing scope '{Scope.SHOP}': an auditor may not {action}")
        raise PermissionDenied(f"{action} is made by a shop account (use its token, or the "
                               "platform's with X-Privnum-Account)")
    if who.role is None:  # the token's account does not exist: the shop never enabled
        raise ServiceNotEnabled(f"shop {who.shop_id} has not enabled the privacy-number service")
    return who.shop_id, who.account_id


async def acting_account(shops: ShopPort, who: Principal, shop_id: str) -> str:
    """The audit actor a change of ``shop_id``'s accounts or caller numbers is made as: a
    shop account's own (with the platform, if it acts on the account's behalf, or the
    operator naming it), else the platform on behalf of the shop's main account (only the
    main account configures them). The store reads the account with
    :func:`routing.api_ports.account_of`."""
    if who.account_id is not None:
        return who.actor
    main = (await shops.get(shop_id)).main_account_id
    if main is None:
        raise ServiceNotEnabled(f"shop {shop_id} has not enabled the privacy-number service")
    return acting_for(who.actor, main)


def see_operations(who: Principal) -> None:
    """The platform-wide operations view (every shop's calls, the pool, webhooks, health)."""
    platform_only(who, "see the operations pages")


def audit_call_log(who: Principal) -> None:
    """Exports with chain positions and the chain check: the platform (every shop) and
    auditors (the shops they are granted, see :func:`audit_shop`); never a shop account."""
    if who.kind is not PrincipalKind.AUDITOR:
        platform_only(who, "export or verify the call log")


def audit_shop(who: Principal, shop_id: str | None) -> None:
    """``who`` may export, list, download or verify ``shop_id``'s records (``None``: every
    shop's, the platform only): the call log's own rule, from an auditing credential."""
    audit_call_log(who)
    if shop_id is None:
        platform_only(who, "export or verify every shop's call log (choose a shop)")
    else:
        read_calls(who, shop_id)


def audits(who: Principal, shop_id: str | None) -> bool:
    """Whether :func:`audit_shop` lets ``who`` see ``shop_id``'s exports (to list them)."""
    try:
        audit_shop(who, shop_id)
    except PermissionDenied:
        return False
    return True


def read_call_log(who: Principal, shop_id: str) -> None:
    """A shop's call records: its own accounts, an auditor granted it, the platform."""
    read_calls(who, shop_id)
