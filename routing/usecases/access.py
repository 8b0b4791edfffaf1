"""Who may do what: the rules every use case applies to the :class:`Principal` acting.

A platform principal (the admin token) and an operator (the CLI on the privnum host) act on
every shop; a shop account acts on its own shop only. Objects found by id in another shop are
"not found", so ids do not leak between shops.
"""

from __future__ import annotations

from routing.api_ports import Principal, PrincipalKind, ShopPort
from routing.errors import NotFound, PermissionDenied, ServiceNotEnabled
from routing.model import AccountRole


def in_shop(who: Principal, shop_id: str) -> None:
    """``who`` may act on ``shop_id``."""
    if not who.is_admin and who.shop_id != shop_id:
        raise PermissionDenied("this token belongs to another shop")


def owned(who: Principal, shop_id: str, what: str) -> None:
    """Like :func:`in_shop` for an object found by id: another shop's object is not found."""
    if not who.is_admin and who.shop_id != shop_id:
        raise NotFound(f"{what} not found")


def main_only(who: Principal, shop_id: str, action: str) -> None:
    """Only the shop's main account (or the platform, on its behalf) may ``action``."""
    in_shop(who, shop_id)
    if who.kind is PrincipalKind.ACCOUNT and who.role is not AccountRole.MAIN:
        raise PermissionDenied(f"only the shop's main account may {action}")


def manage_webhooks(who: Principal) -> None:
    """Webhook subscriptions (the platform's receivers, every shop's events) are managed by
    the platform's credential or an operator, never by a shop account."""
    if not who.is_admin:
        raise PermissionDenied("webhook subscriptions are managed with the platform credential")


def platform_only(who: Principal, action: str) -> None:
    if not who.is_admin:
        raise PermissionDenied(f"only the platform may {action}")


def shop_account(who: Principal, action: str) -> tuple[str, str]:
    """(shop, account) of a shop account's principal; the platform cannot ``action``."""
    if who.is_admin or who.account_id is None or who.shop_id is None:
        raise PermissionDenied(f"{action} is made by a shop account (use its token)")
    if who.role is None:  # the token's account does not exist: the shop never enabled
        raise ServiceNotEnabled(f"shop {who.shop_id} has not enabled the privacy-number service")
    return who.shop_id, who.account_id


async def acting_account(shops: ShopPort, who: Principal, shop_id: str) -> str:
    """The account a change of ``shop_id``'s accounts or caller numbers is made as: a shop
    account's own (or the one an operator names), else the shop's main account, on whose
    behalf the platform acts (only the main account configures them)."""
    if who.account_id is not None:
        return who.account_id
    main = (await shops.get(shop_id)).main_account_id
    if main is None:
        raise ServiceNotEnabled(f"shop {shop_id} has not enabled the privacy-number service")
    return main


def see_operations(who: Principal) -> None:
    """The platform-wide operations view (every shop's calls, the pool, webhooks, health)."""
    platform_only(who, "see the operations pages")


def audit_call_log(who: Principal) -> None:
    """Exports of every shop's call records and the chain check (the platform's auditors)."""
    platform_only(who, "export or verify the call log")


def read_call_log(who: Principal, shop_id: str) -> None:
    """A shop's call records: its own accounts, or the platform on its behalf."""
    in_shop(who, shop_id)
