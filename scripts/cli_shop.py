"""``privnum shop``: enable the privacy-number service for a shop, show, disable, set level."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from routing.shop_views import SHOP_LEVELS, ShopView
from scripts.cli_support import operator, run, use_cases_of, utc_now

app = typer.Typer(no_args_is_help=True)

ActorOpt = Annotated[str, typer.Option("--actor", help="Who does this (for the audit log).")]


@app.command("enable")
def enable(
    ctx: typer.Context,
    shop_id: Annotated[str, typer.Argument(help="Platform shop id.")],
    main_account: Annotated[str, typer.Option("--main-account", help="Main account id.")],
    phone: Annotated[str | None, typer.Option(
        help="Main account's mobile phone (becomes the default caller number).")] = None,
    agreement: Annotated[str | None, typer.Option(
        help="Version of the service agreement the shop accepted.")] = None,
    accepted_by: Annotated[str | None, typer.Option(
        help="Who accepted the agreement (default: the main account).")] = None,
    name: Annotated[str | None, typer.Option(help="Shop name.")] = None,
    level: Annotated[str | None, typer.Option(help=f"Shop level ({'/'.join(SHOP_LEVELS)}).")
                     ] = None,
) -> None:
    """Enable the service (once; running it again changes nothing; re-enables a disabled shop).

    The first time needs --phone and --agreement.
    """
    async def work() -> tuple[ShopView, bool]:
        async with use_cases_of(ctx) as cases:
            result = await cases.shops.enable(
                operator(), shop_id, now=utc_now(), main_account_id=main_account,
                main_phone=phone, agreement_version=agreement, accepted_by=accepted_by,
                name=name, level=level)
        return result.shop, result.changed

    shop, changed = run(work)
    note = "enabled" if changed else "already enabled, nothing changed"
    Console().print(f"shop {shop.id}: {note}", highlight=False)
    _print_shop(shop)


@app.command("show")
def show(
    ctx: typer.Context,
    shop_id: Annotated[str | None, typer.Argument(help="Shop id (omit to list all).")] = None,
) -> None:
    """Show one shop, or every shop."""
    async def work() -> list[ShopView]:
        async with use_cases_of(ctx) as cases:
            shops = cases.shops
            return [await shops.get(operator(), shop_id)] if shop_id else await shops.all(
                operator())

    shops = run(work)
    if shop_id:
        _print_shop(shops[0])
        return
    table = Table("shop", "name", "level", "service", "main account", "main phone")
    for s in shops:
        table.add_row(s.id, s.name, s.level, s.service_state.value, s.main_account_id or "",
                      s.main_phone or "")
    Console().print(table)


@app.command("disable")
def disable(ctx: typer.Context, shop_id: str, actor: ActorOpt = "cli") -> None:
    """Switch the service off: no new privacy numbers, calls refused. 'enable' turns it back on."""
    async def work() -> ShopView:
        async with use_cases_of(ctx) as cases:
            return await cases.shops.disable(operator(actor), shop_id, utc_now())

    shop = run(work)
    Console().print(f"shop {shop.id}: {shop.service_state.value}", highlight=False)


@app.command("set-level")
def set_level(ctx: typer.Context, shop_id: str,
              level: Annotated[str, typer.Argument(help="/".join(SHOP_LEVELS))],
              actor: ActorOpt = "cli") -> None:
    """Set the shop level (low levels may be barred from plaintext reveals)."""
    async def work() -> ShopView:
        async with use_cases_of(ctx) as cases:
            return await cases.shops.set_level(operator(actor), shop_id, level, utc_now())

    shop = run(work)
    Console().print(f"shop {shop.id}: level {shop.level}", highlight=False)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _print_shop(shop: ShopView) -> None:
    table = Table(show_header=False)
    for key, value in (
        ("shop", shop.id), ("name", shop.name), ("level", shop.level),
        ("service", shop.service_state.value), ("agreement", shop.agreement_version or ""),
        ("accepted by", shop.accepted_by or ""), ("accepted at", _when(shop.accepted_at)),
        ("main account", shop.main_account_id or ""), ("main phone", shop.main_phone or ""),
        ("updated", _when(shop.updated_at)),
    ):
        table.add_row(key, value)
    Console().print(table)
