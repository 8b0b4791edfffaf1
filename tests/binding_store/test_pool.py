from __future__ import annotations

import pytest

from binding_store.audit import AuditLog
from binding_store.db import Database
from binding_store.pool import PoolRepository
from routing.errors import InvalidInput, NotFound
from routing.model import PoolState
from tests.binding_store.shop_helpers import NOW

CSV = """number,region
170 0000 0001,BJ
+86 170-0000-0002,SH
008617000000003,

not-a-number,BJ
17000000001,BJ
"oops,BJ
17000000004,{long}
,BJ
8617000000005,SH
""".format(long="R" * 40)


async def test_import_normalises_and_reports_each_row(database: Database) -> None:
    repo = PoolRepository(database)
    report = await repo.import_csv(CSV.splitlines(keepends=True), now=NOW, default_region="GZ")
    assert (report.rows, report.inserted) == (9, 4)
    assert [(e.line, e.value) for e in report.errors] == [
        (6, "not-a-number"), (8, '"oops,BJ'), (9, "R" * 40), (10, ",BJ")]
    assert "malformed CSV" in report.errors[1].message
    assert report.errors[3].message == "missing number"
    assert [(d.line, d.value, d.message) for d in report.duplicates] == [
        (7, "+8617000000001", "repeats line 2")]
    numbers = await repo.list_numbers()
    assert [(n.number, n.region, n.state) for n in numbers] == [
        ("+8617000000001", "BJ", PoolState.AVAILABLE),
        ("+8617000000002", "SH", PoolState.AVAILABLE),
        ("+8617000000003", "GZ", PoolState.AVAILABLE),
        ("+8617000000005", "SH", PoolState.AVAILABLE)]
    assert all(n.created_at == NOW and n.last_released_at is None for n in numbers)
    event = (await AuditLog(database).events(kind="pool.imported"))[0]
    assert event.detail == {"rows": 9, "inserted": 4, "duplicates": 1, "errors": 4}


async def test_reimport_reports_duplicates_and_adds_the_rest(database: Database) -> None:
    repo = PoolRepository(database)
    await repo.import_csv(["number,region\n", "17000000001,BJ\n"], now=NOW)
    report = await repo.import_csv(
        ["region,number\n", "BJ,17000000001\n", "SH,17000000002\n"], now=NOW)
    assert report.inserted == 1
    assert [(d.line, d.message) for d in report.duplicates] == [(2, "already in the pool")]
    assert (await repo.counts()).total == 2


async def test_header_is_required(database: Database) -> None:
    repo = PoolRepository(database)
    with pytest.raises(InvalidInput, match="line 1: expected the header"):
        await repo.import_csv(["17000000001,BJ\n"], now=NOW)
    with pytest.raises(InvalidInput, match="empty"):
        await repo.import_csv(["\n", "  \n"], now=NOW)
    with pytest.raises(InvalidInput, match="batch size"):
        await repo.import_csv(["number\n"], now=NOW, batch_size=0)
    assert (await repo.counts()).total == 0


async def test_batches_commit_with_progress(database: Database) -> None:
    lines = ["number,region\n"] + [f"170{i:08d},R{i % 3}\n" for i in range(1, 26)]
    seen: list[tuple[int, int]] = []
    report = await PoolRepository(database).import_csv(
        lines, now=NOW, batch_size=10, progress=lambda rows, done: seen.append((rows, done)))
    assert report.inserted == 25 and not report.errors
    assert [rows for rows, _ in seen] == [10, 20, 25]
    assert seen[-1][1] == sum(len(line.encode()) for line in lines)
    counts = await PoolRepository(database).counts()
    assert counts.by_region == {"R0": 8, "R1": 9, "R2": 8}
    assert counts.by_state[PoolState.AVAILABLE] == 25


async def test_list_counts_and_states(database: Database) -> None:
    repo = PoolRepository(database)
    await repo.import_csv(["number,region\n"] + [f"170{i:08d},{'BJ' if i % 2 else 'SH'}\n"
                                                 for i in range(1, 7)], now=NOW)
    quarantined = await repo.set_state("17000000001", PoolState.QUARANTINED, actor="ops",
                                       now=NOW)
    assert quarantined.state is PoolState.QUARANTINED
    await repo.set_state("+86 170 0000 0002", PoolState.RETIRED, actor="ops", now=NOW)
    counts = await repo.counts()
    assert counts.cells == {
        ("BJ", PoolState.AVAILABLE): 2, ("BJ", PoolState.QUARANTINED): 1,
        ("SH", PoolState.AVAILABLE): 2, ("SH", PoolState.RETIRED): 1}
    assert counts.by_state == {PoolState.AVAILABLE: 4, PoolState.QUARANTINED: 1,
                               PoolState.RETIRED: 1}
    assert (await repo.counts(region="SH")).total == 3
    assert [n.number for n in await repo.list_numbers(state=PoolState.AVAILABLE, region="BJ")
            ] == ["+8617000000003", "+8617000000005"]
    page = await repo.list_numbers(limit=2, offset=2)
    assert [n.number for n in page] == ["+8617000000003", "+8617000000004"]
    back = await repo.set_state("17000000001", PoolState.AVAILABLE, actor="ops", now=NOW)
    assert back.state is PoolState.AVAILABLE
    events = await AuditLog(database).events(kind="pool.state")
    assert (events[0].subject, events[0].detail) == (
        "+8617000000001", {"from": "quarantined", "to": "available"})
    with pytest.raises(NotFound):
        await repo.set_state("17099999999", PoolState.RETIRED, actor="ops", now=NOW)


async def test_is_virtual_number_in_any_format(database: Database) -> None:
    repo = PoolRepository(database)
    await repo.import_csv(["number,region\n", "17000000001,BJ\n", "17000000002,BJ\n"], now=NOW)
    await repo.set_state("17000000002", PoolState.RETIRED, actor="ops", now=NOW)
    for form in ("17000000001", "+86 170-0000-0001", "008617000000001", "8617000000001"):
        assert await repo.is_virtual_number(form), form
    assert await repo.is_virtual_number("17000000002")  # retired numbers still count
    assert not await repo.is_virtual_number("13800138000")
    assert not await repo.is_virtual_number("nonsense")
    assert not await repo.is_virtual_number("")


@pytest.mark.slow
async def test_import_100k_rows(database: Database) -> None:
    def lines() -> object:
        yield "number,region\n"
        for i in range(100_000):
            yield f"171{i:08d},R{i % 7}\n"

    report = await PoolRepository(database).import_csv(lines(), now=NOW)  # type: ignore[arg-type]
    assert (report.rows, report.inserted, report.errors, report.duplicates) == (
        100_000, 100_000, (), ())
    assert (await PoolRepository(database).counts()).total == 100_000
