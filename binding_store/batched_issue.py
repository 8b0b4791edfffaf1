"""Binding issue on PostgreSQL through the group-commit writer: concurrent requests go
together into one ``privnum_issue`` statement and one commit, each with its own answer.

A request another transaction holds up (``busy``) is sent again in a later batch; one that
meets a binding still active past its expiry, or an exhausted AXB pool whose overflow may take
an extension number, is left to the ORM path (``None``).
"""

from __future__ import annotations

import asyncio

from binding_store.allocation_sql import CANDIDATE_WINDOW, no_number_error
from binding_store.binding_policy import BindingPolicy, IssueStats
from binding_store.db import Database
from binding_store.group_commit import GroupWriter
from binding_store.index_publisher import IndexPublisher
from binding_store.issue_requests import IssueInput, IssueRow, interpret
from binding_store.issue_sql import CALL, PLAN_CHOICE, REPLAN_RETRY_SECONDS, REPLAN_SECONDS
from routing.binding_views import BindingView
from routing.errors import StoreUnavailable


class BatchedIssuer:
    """Issues AXB bindings in batches; shares one writer per database and policy."""

    def __init__(self, database: Database, policy: BindingPolicy, publisher: IndexPublisher,
                 stats: IssueStats, *, with_event: bool) -> None:
        self._db = database
        self._policy = policy
        self._publisher = publisher
        self._stats = stats
        self._with_event = with_event
        p = policy
        self._writer = database.shared(
            f"issue:{p.cooldown}:{p.max_attempts}:{p.max_batch}",
            lambda: _issue_writer(database, p))

    @property
    def batches(self) -> int:
        """Statements the writer has sent."""
        return self._writer.batches

    async def issue(self, given: IssueInput, *, overflow: bool) -> BindingView | None:
        """One request through the writer; ``None``: the ORM path must do it (a binding
        still active past its expiry is in the way, or the AXB pool is exhausted and
        ``overflow`` lets extension numbers take the binding)."""
        request = given.request(with_event=self._with_event)
        attempts = self._policy.max_attempts
        for attempt in range(attempts):
            row = IssueRow(*await self._writer.submit(request))
            answer = interpret(row, given, attempts)
            if not answer.busy:
                break
            self._stats.retries += 1
            # The other transaction is one batch away from its commit.
            await asyncio.sleep(0.001 * (1 + attempt % 8))
        else:
            raise StoreUnavailable(
                f"gave up after {attempts} attempts under contention; retry")
        if answer.exhausted and overflow:
            return None
        if answer.exhausted:
            async with self._db.session() as s:
                raise await no_number_error(
                    s, shop_id=given.shop_id, caller_a=given.caller_a,
                    buyer_bidx=given.buyer_bidx, now=given.now,
                    cooldown=self._policy.cooldown)
        if answer.view is None:
            return None
        if answer.entry is None:
            self._stats.repeated += 1
        else:
            self._stats.issued += 1
            await self._publisher.created(answer.entry, given.now)
        return answer.view


def _issue_writer(database: Database, policy: BindingPolicy) -> GroupWriter:
    writer = GroupWriter(database.url, CALL,
                         (policy.cooldown, CANDIDATE_WINDOW, policy.max_attempts),
                         timeout=database.timeout * 5, max_batch=policy.max_batch,
                         replan=PLAN_CHOICE, replan_seconds=REPLAN_SECONDS,
                         replan_retry_seconds=REPLAN_RETRY_SECONDS)
    database.on_dispose(writer.close)
    return writer
