"""``privnum calls list``: a shop's privacy-number call records (SPEC rule 6)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scripts.cli_output import Column, ExitCode, JsonOption, print_rows, utc_z
from scripts.cli_support import (
    fail,
    operator,
    parse_when,
    run,
    settings_of,
    use_cases_of,
    utc_now,
)

if TYPE_CHECKING:
    from routing.call_log_views import CallLogEntry, CallLogPage

app = typer.Typer(no_args_is_help=True)

_COLUMNS = [Column("order_id", "order"),
            Column("direction", "direction"), Column("caller", "caller"),
            Column("virtual_x", "X"), Column("extension", "ext."),
            Column("buyer_masked", "buyer"),
            Column("outcome", "outcome"), Column("mark", "mark"), Column("billsec", "billsec"),
            Column("reason_text", "reason")]
_LINKS = [Column("order_link", "order link"), Column("chat_link", "chat link")]


@app.command("list")
def list_command(
    ctx: typer.Context,
    shop: Annotated[str, typer.Option("--shop", help="Shop id.")],
    since: Annotated[str | None, typer.Option(
        help="From (ISO date or date-time, UTC unless it names a zone; default: 1 day ago; "
             "at most 30).")] = None,
    until: Annotated[str | None, typer.Option(help="Until (default: now).")] = None,
    order: Annotated[str | None, typer.Option("--order", help="Only this order.")] = None,
    caller: Annotated[str | None, typer.Option(help="Only this caller number A.")] = None,
    outcome: Annotated[str | None, typer.Option(
        help="answered, not_answered, rejected, failed or unknown.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option(help="Next-page cursor.")] = None,
    utc: Annotated[bool, typer.Option("--utc", help="Times in UTC, not the shop's zone.")
                   ] = False,
    as_json: JsonOption = False,
) -> None:
    """Newest first; buyer numbers masked. Times in the shop's time zone (shop set-timezone;
    default: the risk policy's zone), or UTC with --utc; --json always gives UTC (Z)."""
    from routing.call_log_views import CallLogQuery, Outcome
    from routing.numbers import try_normalize

    settings = settings_of(ctx)
    if outcome is not None and outcome not in {o.value for o in Outcome}:
        fail(f"--outcome: {outcome!r} is none of {', '.join(o.value for o in Outcome)}",
             ExitCode.USAGE)
    caller_a = None
    if caller is not None:
        caller_a = try_normalize(caller, settings.bindings.default_region)
        if caller_a is None:
            fail(f"--caller: not a phone number: {caller!r}", ExitCode.USAGE)
    query = CallLogQuery(
        shop_id=shop, since=parse_when(since, "--since") if since else None,
        until=parse_when(until, "--until") if until else None, order_id=order,
        caller=caller_a, outcome=outcome, limit=limit, cursor=cursor)

    async def work() -> tuple[CallLogPage, str]:
        async with use_cases_of(ctx) as cases:
            found = await cases.shops.get(operator(), shop)  # "not found" for a wrong id
            zone = "UTC" if utc else cases.shops.timezone_of(found)
            return await cases.call_log.page(operator(), query, utc_now()), zone

    page, zone = run(work)
    links = bool(settings.call_log.order_link_template or settings.call_log.chat_link_template)
    if as_json:
        print_rows([_machine(e) for e in page.entries], [], as_json=True)
        return
    rows = [{**_machine(e), "start": _local(e.record.start_utc, zone),
             "caller": e.record.caller_a or e.record.caller_masked,
             "extension": e.record.extension or "", "mark": e.record.mark or ""}
            for e in page.entries]
    columns = [Column("start", f"start ({zone})"), *_COLUMNS, *(_LINKS if links else [])]
    print_rows(rows, columns, as_json=False,
               title=f"calls of shop {shop}, {_local(page.window.since, zone)} - "
                     f"{_local(page.window.until, zone)} ({zone})")
    if page.next_cursor:
        typer.echo(f"more: --cursor {page.next_cursor}", err=True)


def _local(moment: datetime, zone: str) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def _machine(entry: CallLogEntry) -> dict[str, Any]:
    """A call record for scripts: UTC with Z, masked numbers only."""
    r = entry.record
    return {
        "id": entry.id, "start": utc_z(r.start_utc),
        "answer": utc_z(r.answer_utc) if r.answer_utc else None, "end": utc_z(r.end_utc),
        "duration": r.duration, "billsec": r.billsec, "order_id": r.order_id,
        "binding_id": r.binding_id, "direction": r.direction.value if r.direction else None,
        "caller": r.caller_a, "caller_masked": r.caller_masked, "virtual_x": r.virtual_x,
        "extension": r.extension, "display": r.display_x,
        "buyer_masked": r.buyer_masked, "outcome": r.outcome.value, "mark": r.mark,
        "reason": r.reason,
        "reason_text": entry.reason_text, "order_link": entry.order_link or None,
        "chat_link": entry.chat_link or None}
