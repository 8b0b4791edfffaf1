"""``privnum calls list``: a shop's privacy-number call records (SPEC rule 6)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from binding_store.call_log_query import CallLogQuery, list_calls
from routing.call_log_views import LinkTemplates
from routing.numbers import try_normalize
from scripts.cli_cdr import parse_when
from scripts.cli_support import fail, run, settings_of
from scripts.wiring import open_database, utc_now

app = typer.Typer(help="Shops' privacy-number call records.", no_args_is_help=True)


@app.command("list")
def list_command(
    ctx: typer.Context,
    shop: Annotated[str, typer.Option("--shop", help="Shop id.")],
    since: Annotated[str | None, typer.Option(help="From (default: 1 day ago; at most 30).")
                     ] = None,
    until: Annotated[str | None, typer.Option(help="Until (default: now).")] = None,
    order: Annotated[str | None, typer.Option("--order", help="Only this order.")] = None,
    caller: Annotated[str | None, typer.Option(help="Only this caller number A.")] = None,
    outcome: Annotated[str | None, typer.Option(
        help="answered, not_answered, rejected, failed or unknown.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option(help="Next-page cursor.")] = None,
) -> None:
    """Newest first. Times in UTC; buyer numbers masked."""
    settings = settings_of(ctx)
    caller_a = None
    if caller is not None:
        caller_a = try_normalize(caller, settings.bindings.default_region)
        if caller_a is None:
            fail(f"--caller: not a phone number: {caller!r}")
    query = CallLogQuery(
        shop_id=shop, since=parse_when(since, "--since") if since else None,
        until=parse_when(until, "--until") if until else None, order_id=order,
        caller=caller_a, outcome=outcome, limit=limit, cursor=cursor)
    links = LinkTemplates(order=settings.call_log.order_link_template,
                          chat=settings.call_log.chat_link_template)

    async def work() -> Any:
        async with open_database(settings, reads=True) as db:
            return await list_calls(db, query, utc_now(), links)

    page = run(work)
    table = Table(title=f"calls of shop {shop}, {page.window.since:%Y-%m-%d %H:%M} - "
                        f"{page.window.until:%Y-%m-%d %H:%M} UTC")
    for column in ("start (UTC)", "order", "direction", "caller", "X", "buyer", "outcome",
                   "billsec", "reason", "order link", "chat link"):
        table.add_column(column)
    for entry in page.entries:
        r = entry.record
        table.add_row(f"{r.start_utc:%Y-%m-%d %H:%M:%S}", r.order_id, r.direction or "",
                      r.caller_a or r.caller_masked, r.virtual_x, r.buyer_masked, r.outcome,
                      str(r.billsec), entry.reason_text, entry.order_link, entry.chat_link)
    console = Console()
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", highlight=False)
