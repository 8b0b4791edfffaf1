"""``privnum shop``: enable the privacy-number service for a shop, show, disable, set level
and time zone."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from routing.shop_views import SHOP_LEVELS, EnableResult, ShopView
from scripts.cli_output import Column, JsonOption, print_json, print_record, print_rows
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
    timezone: Annotated[str | None, typer.Option(
        help="IANA zone the shop's call log is read in (default: the risk policy's zone, "
             "Asia/Shanghai unless configured).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Enable the service (once; running it again changes nothing and says what it ignored;
    re-enables a disabled shop).

    The first time needs --phone and --agreement.
    """
    async def work() -> tuple[EnableResult, str]:
        async with use_cases_of(ctx) as cases:
            result = await cases.shops.enable(
                operator(), shop_id, now=utc_now(), main_account_id=main_account,
                main_phone=phone, agreement_version=agreement, accepted_by=accepted_by,
                name=name, level=level, timezone=timezone)
            return result, cases.shops.timezone_of(result.shop)

    result, zone = run(work)
    if as_json:
        print_json({**_record(result.shop, zone), "changed": result.changed,
                    "ignored": list(result.ignored)})
        return
    note = "enabled" if result.changed else "already enabled, nothing changed"
    typer.echo(f"shop {result.shop.id}: {note}")
    for what in result.ignored:
        typer.echo(f"ignored: {what}", err=True)
    print_record(_record(result.shop, zone), as_json=False, labels=_LABELS)


@app.command("show")
def show(
    ctx: typer.Context,
    shop_id: Annotated[str | None, typer.Argument(help="Shop id (omit to list all).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show one shop, or every shop."""
    async def work() -> list[tuple[ShopView, str]]:
        async with use_cases_of(ctx) as cases:
            shops = cases.shops
            found = [await shops.get(operator(), shop_id)] if shop_id else await shops.all(
                operator())
            return [(s, shops.timezone_of(s)) for s in found]

    shops = run(work)
    if shop_id:
        print_record(_record(*shops[0]), as_json=as_json, labels=_LABELS)
        return
    print_rows([_record(s, zone) for s, zone in shops],
               [Column("id", "shop"), Column("name", "name"), Column("level", "level"),
                Column("service", "service"), Column("main_account", "main account"),
                Column("main_phone", "main phone"), Column("timezone", "time zone")],
               as_json=as_json)


@app.command("disable")
def disable(ctx: typer.Context, shop_id: str, actor: ActorOpt = "cli") -> None:
    """Switch the service off: no new privacy numbers, calls refused. 'enable' turns it back on."""
    async def work() -> ShopView:
        async with use_cases_of(ctx) as cases:
            return await cases.shops.disable(operator(actor), shop_id, utc_now())

    shop = run(work)
    typer.echo(f"shop {shop.id}: {shop.service_state.value}")


@app.command("set-level")
def set_level(ctx: typer.Context, shop_id: str,
              level: Annotated[str, typer.Argument(help="/".join(SHOP_LEVELS))],
              actor: ActorOpt = "cli") -> None:
    """Set the shop level (low levels may be barred from plaintext reveals)."""
    async def work() -> ShopView:
        async with use_cases_of(ctx) as cases:
            return await cases.shops.set_level(operator(actor), shop_id, level, utc_now())

    shop = run(work)
    typer.echo(f"shop {shop.id}: level {shop.level}")


@app.command("set-timezone")
def set_timezone(
    ctx: typer.Context, shop_id: str,
    timezone: Annotated[str, typer.Argument(
        help="IANA zone, e.g. Asia/Shanghai; 'default' for the risk policy's zone.")],
    actor: ActorOpt = "cli",
) -> None:
    """Set the time zone the shop's call log is read in (CLI table, CSV export option)."""
    zone = None if timezone == "default" else timezone

    async def work() -> tuple[ShopView, str]:
        async with use_cases_of(ctx) as cases:
            shop = await cases.shops.set_timezone(operator(actor), shop_id, zone, utc_now())
            return shop, cases.shops.timezone_of(shop)

    shop, effective = run(work)
    typer.echo(f"shop {shop.id}: time zone {effective}"
               + ("" if shop.timezone else " (the default)"))


_LABELS = {"id": "shop", "name": "name", "level": "level", "service": "service",
           "agreement": "agreement", "accepted_by": "accepted by", "accepted_at": "accepted at",
           "main_account": "main account", "main_phone": "main phone",
           "timezone": "time zone", "updated_at": "updated"}


def _record(shop: ShopView, zone: str) -> dict[str, Any]:
    return {"id": shop.id, "name": shop.name, "level": shop.level,
            "service": shop.service_state.value, "agreement": shop.agreement_version,
            "accepted_by": shop.accepted_by, "accepted_at": shop.accepted_at,
            "main_account": shop.main_account_id, "main_phone": shop.main_phone,
            "timezone": zone, "timezone_is_default": shop.timezone is None,
            "updated_at": shop.updated_at}
