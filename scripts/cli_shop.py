"""``privnum shop``: enable the privacy-number service for a shop, show, disable, set level
and time zone."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from routing.call_caps import format_caps
from routing.shop_views import SHOP_LEVELS, EnableResult, ShopView
from routing.usecases.call_rules import RulesView
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


@app.command("rules")
def rules(
    ctx: typer.Context, shop_id: str,
    direction: Annotated[str | None, typer.Option(
        help="both | merchant_only | callback_only | default.")] = None,
    grace_seconds: Annotated[str | None, typer.Option(
        "--grace-seconds", help="Seconds after expiry a buyer's callback still reaches the "
        "shop | default.")] = None,
    fallback: Annotated[str | None, typer.Option(
        help="Service line a buyer's callback reaches after the grace window | none | "
             "default.")] = None,
    merchant_window: Annotated[str | None, typer.Option(
        "--merchant-window", help="Permitted time of the shop's calls, HH:MM-HH:MM in the "
        "shop's time zone | none (any time) | default.")] = None,
    callback_window: Annotated[str | None, typer.Option(
        "--callback-window", help="Permitted time of buyers' calls | none | default.")] = None,
    require_caller_report: Annotated[str | None, typer.Option(
        "--require-caller-report", help="yes: unreported caller numbers place no call "
        "(caller_unreported) | no | default.")] = None,
    caps: Annotated[str | None, typer.Option(
        help="Call caps per rolling HOUR/DAY: caller=20/100,buyer=5/20,number=30/300 | none "
             "| default.")] = None,
    warning_seconds: Annotated[str | None, typer.Option(
        "--warning-seconds", help="Both parties hear a warning this long before the "
        "call-length limit; 0: none | default.")] = None,
    record: Annotated[str | None, typer.Option(
        help="yes: calls are recorded, with a notice to both parties first | no | "
             "default.")] = None,
    record_retention_days: Annotated[str | None, typer.Option(
        "--record-retention-days", help="Days an encrypted recording is kept | "
        "default.")] = None,
    actor: ActorOpt = "cli",
    as_json: JsonOption = False,
) -> None:
    """Show the shop's carrier call rules; with options, change them (operator only)."""
    from routing.usecases.call_rules import RulesChange

    change = RulesChange(direction=direction, grace_seconds=grace_seconds,
                         fallback_number=fallback, merchant_window=merchant_window,
                         callback_window=callback_window,
                         require_caller_report=require_caller_report, caps=caps,
                         warning_seconds=warning_seconds, record=record,
                         record_retention_days=record_retention_days)

    async def work() -> RulesView:
        async with use_cases_of(ctx) as cases:
            if change == RulesChange():
                return await cases.call_rules.get(operator(actor), shop_id)
            return await cases.call_rules.set(operator(actor), shop_id, change, utc_now())

    view = run(work)
    print_record(_rules_record(view), as_json=as_json, labels=_RULE_LABELS)


@app.command("report-caller")
def report_caller(
    ctx: typer.Context, shop_id: str,
    number: Annotated[str, typer.Argument(help="The shop's caller number.")],
    status: Annotated[str, typer.Argument(help="reported | unreported")],
    actor: ActorOpt = "cli",
) -> None:
    """Record whether a caller number was reported to the carrier with its real user."""
    async def work() -> tuple[str, str]:
        async with use_cases_of(ctx) as cases:
            e164, reporting = await cases.call_rules.set_reporting(
                operator(actor), shop_id, number, status, utc_now())
            return e164, reporting.value

    e164, value = run(work)
    typer.echo(f"shop {shop_id}: caller {e164} {value}")


_RULE_LABELS = {"shop": "shop", "direction": "direction", "grace_seconds": "grace seconds",
                "fallback_number": "fallback line", "merchant_window": "merchant calls",
                "callback_window": "callbacks",
                "require_caller_report": "caller report required", "caps": "call caps",
                "warning_seconds": "warning before the limit (s)", "record": "recorded",
                "record_retention_days": "recordings kept (days)", "own": "set by the shop"}


def _rules_record(view: RulesView) -> dict[str, Any]:
    e, own = view.effective, view.own
    own_names = [name for name, value in (
        ("direction", own.direction), ("grace_seconds", own.grace_seconds),
        ("fallback_number", own.fallback_number),
        ("merchant_window", own.merchant_window or own.clear_merchant_window or None),
        ("callback_window", own.callback_window or own.clear_callback_window or None),
        ("require_caller_report", own.require_caller_report), ("caps", own.caps),
        ("warning_seconds", own.warning_seconds), ("record", own.record),
        ("record_retention_days", own.record_retention_days))
        if value is not None]
    return {"shop": view.shop_id, "direction": e.direction.value,
            "grace_seconds": e.grace_seconds, "fallback_number": e.fallback_number or None,
            "merchant_window": str(e.merchant_window) if e.merchant_window else "any time",
            "callback_window": str(e.callback_window) if e.callback_window else "any time",
            "require_caller_report": e.require_caller_report,
            "caps": format_caps(e.caps) or "none", "warning_seconds": e.warning_seconds,
            "record": e.record, "record_retention_days": e.record_retention_days,
            "own": ", ".join(own_names) or "nothing (platform defaults)"}


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
