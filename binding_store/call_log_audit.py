"""Tamper evidence and retention for the call log: ``verify`` walks the hash chain and names
every altered, deleted or inserted row; ``purge`` removes the oldest part of the chain (on
PostgreSQL by dropping whole partitions, see ``binding_store.call_log_retention``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store.call_log import CallLogStore, stored_columns
from binding_store.call_log_query import stream_rows
from binding_store.call_log_retention import plan_and_drop
from binding_store.cdr_models import Cdr, CdrChain
from binding_store.db import Database
from binding_store.models import CallAttempt
from routing.call_log_views import GENESIS_HASH, row_digest


class ProblemKind(StrEnum):
    ALTERED = "altered"
    DELETED = "deleted"
    INSERTED = "inserted"


@dataclass(frozen=True)
class ChainProblem:
    kind: ProblemKind
    chain_seq: int | None
    row_id: int | None
    uniqueid: str
    detail: str
    shop_id: str | None = None  # the row's shop; None for rows that are gone

    def __str__(self) -> str:
        where = f"chain seq {self.chain_seq}" if self.chain_seq is not None else "chain"
        row = f" (id {self.row_id}, uniqueid {self.uniqueid})" if self.row_id is not None else ""
        return f"{self.kind}: {where}{row}: {self.detail}"


@dataclass
class VerifyReport:
    checked: int = 0
    head_seq: int = 0
    anchor_seq: int = 0
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class PurgePlan:
    cutoff: datetime
    rows: int
    first_seq: int | None
    last_seq: int | None
    dry_run: bool
    attempts: int = 0  # routing decisions (call_attempts) older than the cutoff
    partitions: tuple[str, ...] = ()  # partitions dropped (PostgreSQL)
    kept_late: int = 0  # old records kept until what was appended before them is due too


async def _chain_head(db: Database) -> tuple[int, str, int, str]:
    async with db.session() as session:
        row = (await session.execute(select(
            CdrChain.head_seq, CdrChain.head_hash, CdrChain.anchor_seq, CdrChain.anchor_hash)
            .where(CdrChain.id == 1))).one_or_none()
    if row is None:
        return 0, GENESIS_HASH, 0, GENESIS_HASH
    return int(row[0]), str(row[1]), int(row[2]), str(row[3])


async def verify(db: Database, chunk: int = 1000) -> VerifyReport:
    head_seq, head_hash, anchor_seq, anchor_hash = await _chain_head(db)
    report = VerifyReport(head_seq=head_seq, anchor_seq=anchor_seq)
    prev_seq, prev_hash, prev_uid = anchor_seq, anchor_hash, "(chain start)"
    stmt = select(Cdr.__table__).order_by(Cdr.chain_seq, Cdr.id)
    async for row in stream_rows(db, stmt, chunk):
        report.checked += 1
        problem = _check_row(row, prev_seq, prev_hash, prev_uid, head_seq, anchor_seq)
        report.problems.extend(problem)
        if any(p.kind is ProblemKind.INSERTED for p in problem):
            continue  # not part of the chain: the next row must link to the one before
        prev_seq, prev_hash, prev_uid = row.chain_seq, row.row_hash, row.uniqueid
    if prev_seq < head_seq:
        report.problems.append(ChainProblem(
            ProblemKind.DELETED, prev_seq + 1, None, "",
            f"chain seq {_span(prev_seq + 1, head_seq)} missing at the end "
            f"(after uniqueid {prev_uid})"))
    elif prev_seq == head_seq and prev_hash != head_hash and report.checked:
        report.problems.append(ChainProblem(
            ProblemKind.ALTERED, prev_seq, None, prev_uid,
            "last row does not match the chain head"))
    return report


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def _check_row(row: Any, prev_seq: int, prev_hash: str, prev_uid: str, head_seq: int,
               anchor_seq: int) -> list[ChainProblem]:
    def problem(kind: ProblemKind, detail: str) -> ChainProblem:
        return ChainProblem(kind, row.chain_seq, row.id, row.uniqueid, detail, row.shop_id)

    if row.chain_seq > head_seq or row.chain_seq <= anchor_seq:
        return [problem(ProblemKind.INSERTED,
                        f"position outside the chain ({anchor_seq + 1}-{head_seq})")]
    if row.chain_seq <= prev_seq:
        # A second row at a position already taken (PostgreSQL's partitioned table cannot
        # make chain_seq unique, so verify does).
        return [problem(ProblemKind.INSERTED, f"chain seq {row.chain_seq} is already taken")]
    found: list[ChainProblem] = []
    if row.chain_seq > prev_seq + 1:
        found.append(ChainProblem(
            ProblemKind.DELETED, prev_seq + 1, None, "",
            f"chain seq {_span(prev_seq + 1, row.chain_seq - 1)} missing between uniqueid "
            f"{prev_uid} and uniqueid {row.uniqueid}"))
    digest = row_digest(row.prev_hash, row.chain_seq, stored_columns(row), row.ingested_at)
    if digest != row.row_hash:
        found.append(problem(ProblemKind.ALTERED, "content does not match its hash"))
    elif row.chain_seq == prev_seq + 1 and row.prev_hash != prev_hash:
        found.append(problem(ProblemKind.ALTERED, "link to the previous row was rewritten"))
    return found


async def purge(db: Database, now: datetime, older_than_days: int, dry_run: bool
                ) -> PurgePlan:
    """Delete the chain prefix whose calls started before ``now - older_than_days``, and the
    routing decisions older than that.

    Only a prefix of the chain can go (the chain stays verifiable from its new anchor), so a
    late-imported old record is kept until everything appended before it is due as well.
    """
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    cutoff = now - timedelta(days=older_than_days)
    store = CallLogStore(db)
    if db.dialect == "postgresql":
        return await _drop_partitions(db, store, now, cutoff, dry_run)
    async with db.session() as session:
        await store.lock_chain(session, now)
        attempts = int((await session.execute(select(func.count()).select_from(CallAttempt)
                                              .where(CallAttempt.at < cutoff))).scalar_one())
        keep_from = (await session.execute(
            select(func.min(Cdr.chain_seq)).where(Cdr.start_utc >= cutoff))).scalar()
        bound = select(func.count(), func.min(Cdr.chain_seq), func.max(Cdr.chain_seq))
        if keep_from is not None:
            bound = bound.where(Cdr.chain_seq < keep_from)
        count, first, last = (await session.execute(bound)).one()
        plan = PurgePlan(cutoff=cutoff, rows=int(count or 0), first_seq=first, last_seq=last,
                         dry_run=dry_run, attempts=attempts)
        if dry_run or not (count or attempts):
            await session.rollback()
            return plan
        await session.execute(delete(CallAttempt).where(CallAttempt.at < cutoff))
        if count:
            anchor_hash = (await session.execute(
                select(Cdr.row_hash).where(Cdr.chain_seq == last))).scalar_one()
            await session.execute(delete(Cdr).where(Cdr.chain_seq <= last))
            await _move_anchor(session, last, anchor_hash, now)
        await session.commit()
        return plan


async def _drop_partitions(db: Database, store: CallLogStore, now: datetime, cutoff: datetime,
                           dry_run: bool) -> PurgePlan:
    async with db.session() as session:
        await store.lock_chain(session, now)
        drop, anchor_hash = await plan_and_drop(session, cutoff, dry_run)
        plan = PurgePlan(cutoff=cutoff, rows=drop.rows, first_seq=drop.first_seq,
                         last_seq=drop.last_seq, dry_run=dry_run, attempts=drop.attempts,
                         partitions=drop.partitions, kept_late=drop.kept_late)
        if dry_run:
            await session.rollback()
            return plan
        if anchor_hash is not None and drop.last_seq is not None:
            await _move_anchor(session, drop.last_seq, anchor_hash, now)
        await session.commit()
        return plan


async def _move_anchor(session: AsyncSession, seq: int, row_hash: str, now: datetime) -> None:
    await session.execute(update(CdrChain).where(CdrChain.id == 1).values(
        anchor_seq=seq, anchor_hash=row_hash, updated_at=now))
