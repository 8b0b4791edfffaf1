"""``privnum webhooks``: subscriptions to call and binding events, their deliveries, replay."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from scripts.cli_output import Column, JsonOption, print_rows
from scripts.cli_support import fail, operator, parse_when, run, use_cases_of, utc_now

if TYPE_CHECKING:
    from routing.webhooks import DeliveryView, NewSubscription, Subscription

app = typer.Typer(no_args_is_help=True)
STATES = ("pending", "delivered", "dead")


@app.command("list")
def list_webhooks(
    ctx: typer.Context,
    removed: Annotated[bool, typer.Option("--removed", help="Include removed ones.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List subscriptions (never their secrets)."""
    async def work() -> list[Subscription]:
        async with use_cases_of(ctx) as cases:
            return await cases.webhooks.list(operator(), include_removed=removed)

    rows = []
    for sub in run(work):
        state = "removed" if sub.removed_at else (
            "paused" if sub.paused_until else "active")
        rows.append({"id": sub.id, "url": sub.url, "events": str(sub.events),
                     "shop": sub.shop_id, "batch": sub.batch_size,
                     "created": sub.created_at, "state": state,
                     "paused_until": sub.paused_until})
    print_rows(rows, [Column("id", "id"), Column("url", "url"), Column("events", "events"),
                      Column("shop", "shop"), Column("batch", "batch"),
                      Column("created", "created"), Column("state", "state"),
                      Column("paused_until", "paused until")], as_json=as_json)


@app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="http(s) URL of the receiver.")],
    events: Annotated[str, typer.Option(
        "--events", help="Comma-separated event types or families (call.*), or *.")] = "*",
    shop: Annotated[str | None, typer.Option("--shop", help="Only this shop's events.")] = None,
    secret: Annotated[str | None, typer.Option(
        "--secret", help="HMAC secret (16-128 characters; default: generated).")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, max=50,
                                       help="Events per request.")] = 1,
    description: Annotated[str, typer.Option(help="What the receiver is.")] = "",
) -> None:
    """Subscribe a receiver. Prints the secret once (sign check: docs/api.md#webhooks)."""
    async def work() -> NewSubscription:
        async with use_cases_of(ctx) as cases:
            return await cases.webhooks.add(operator(), url=url, now=utc_now(), events=events,
                                            shop_id=shop, secret=secret, batch_size=batch,
                                            description=description)

    new = run(work)
    Console(stderr=True).print(
        f"webhook {new.subscription.id} added for {new.subscription.events}; its secret "
        "(store it now, it is not shown again):", highlight=False)
    print(new.secret)


@app.command("remove")
def remove(
    ctx: typer.Context,
    webhook: Annotated[str, typer.Argument(help="Subscription id (wh_...).")],
) -> None:
    """Stop sending to a subscription (idempotent); its history stays."""
    async def work() -> Subscription:
        async with use_cases_of(ctx) as cases:
            return await cases.webhooks.remove(operator(), webhook, utc_now())

    run(work)
    Console().print(f"webhook {webhook} removed", highlight=False)


@app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    webhook: Annotated[str | None, typer.Argument(help="Subscription id (default: all).")]
    = None,
    state: Annotated[str | None, typer.Option(
        "--state", help="pending, delivered or dead.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Deliveries, newest first: state, attempts, next attempt, last error."""
    from routing.webhooks import DeliveryState

    if state is not None and state not in STATES:
        fail(f"--state must be one of {', '.join(STATES)}", 2)

    async def work() -> list[DeliveryView]:
        async with use_cases_of(ctx) as cases:
            return await cases.webhooks.deliveries(
                operator(), subscription_id=webhook, limit=limit,
                state=DeliveryState(state) if state else None)

    rows = [{"id": d.id, "webhook": d.subscription_id, "event": d.event_id,
             "type": d.event_type, "state": d.state.value, "attempts": d.attempts,
             "next_attempt_at": d.next_attempt_at, "last_status": d.last_status,
             "last_error": d.last_error} for d in run(work)]
    print_rows(rows, [Column("id", "id"), Column("webhook", "webhook"), Column("event", "event"),
                      Column("type", "type"), Column("state", "state"),
                      Column("attempts", "attempts"), Column("next_attempt_at", "next attempt"),
                      Column("last_status", "last status"), Column("last_error", "last error")],
               as_json=as_json)


@app.command("replay")
def replay(
    ctx: typer.Context,
    webhook: Annotated[str, typer.Argument(help="Subscription id (wh_...).")],
    state: Annotated[list[str] | None, typer.Option(
        "--state", help="Which deliveries (repeatable; default: dead).")] = None,
    event: Annotated[str | None, typer.Option("--event", help="Only this event id.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only deliveries created since (ISO date or date-time, UTC).")] = None,
) -> None:
    """Send deliveries again from the first retry (same event ids: receivers deduplicate)."""
    from routing.webhooks import DeliveryState

    states = state or ["dead"]
    bad = [s for s in states if s not in STATES]
    if bad:
        fail(f"--state must be one of {', '.join(STATES)} (not {bad[0]})", 2)
    when = parse_when(since, "--since") if since else None

    async def work() -> int:
        async with use_cases_of(ctx) as cases:
            return await cases.webhooks.replay(
                operator(), webhook, utc_now(), states=[DeliveryState(s) for s in states],
                event_id=event, since=when)

    Console().print(f"{run(work)} deliveries queued again", highlight=False)
