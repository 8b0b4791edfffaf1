"""Pure: partition periods and the ranges still missing from a span (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from binding_store.partitions import (
    Period,
    missing_ranges,
    next_period,
    partition_name,
    period_start,
    periods_ahead,
)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("moment", "period", "start", "after"), [
    (t("2026-12-03T19:04:05"), "day", t("2026-12-03"), t("2026-12-04")),
    (t("2026-12-03T19:04:05"), "week", t("2026-11-30"), t("2026-12-07")),  # Thursday
    (t("2026-11-30T00:00:00"), "week", t("2026-11-30"), t("2026-12-07")),  # Monday 00:00
    (t("2026-12-31T23:59:59"), "month", t("2026-12-01"), t("2027-01-01")),
    (t("2028-02-10T00:00:00"), "month", t("2028-02-01"), t("2028-03-01")),  # leap year
    # a moment given in another zone is placed by its UTC instant
    (datetime(2026, 12, 1, 7, 0, tzinfo=timezone(timedelta(hours=8))), "month",
     t("2026-11-01"), t("2026-12-01")),
])
def test_period_start_and_next(moment: datetime, period: Period, start: datetime,
                               after: datetime) -> None:
    assert period_start(moment, period) == start
    assert next_period(start, period) == after


def test_periods_ahead_is_the_current_period_and_n_more() -> None:
    assert periods_ahead(t("2026-12-03T10:00"), "week", 4) == (t("2026-11-30"), t("2027-01-04"))
    assert periods_ahead(t("2026-12-03T10:00"), "month", 1) == (t("2026-12-01"), t("2027-02-01"))


def test_nothing_missing_when_covered() -> None:
    weeks = [(t("2026-11-23"), t("2026-11-30")), (t("2026-11-30"), t("2026-12-07"))]
    assert missing_ranges(weeks, t("2026-11-30"), t("2026-12-07"), "week") == []


def test_missing_pieces_are_cut_at_period_boundaries() -> None:
    existing = [(t("2026-11-30"), t("2026-12-07"))]
    assert missing_ranges(existing, t("2026-11-30"), t("2027-01-01"), "week") == [
        (t("2026-12-07"), t("2026-12-14")), (t("2026-12-14"), t("2026-12-21")),
        (t("2026-12-21"), t("2026-12-28")), (t("2026-12-28"), t("2027-01-01"))]


def test_a_new_period_continues_after_the_old_ones_without_overlap() -> None:
    weekly = [(t("2026-11-30"), t("2026-12-07")), (t("2026-12-07"), t("2026-12-14"))]
    assert missing_ranges(weekly, t("2026-12-01"), t("2027-02-01"), "month") == [
        (t("2026-12-14"), t("2027-01-01")), (t("2027-01-01"), t("2027-02-01"))]


def test_gaps_between_partitions_are_filled() -> None:
    existing = [(t("2026-11-30"), t("2026-12-01")), (t("2026-12-03"), t("2026-12-04"))]
    assert missing_ranges(existing, t("2026-11-30"), t("2026-12-05"), "day") == [
        (t("2026-12-01"), t("2026-12-02")), (t("2026-12-02"), t("2026-12-03")),
        (t("2026-12-04"), t("2026-12-05"))]


def test_partition_names_sort_by_time() -> None:
    assert partition_name("cdrs", t("2026-11-30")) == "cdrs_p20261130"
    assert partition_name("cdrs", t("2026-11-30T06:00")) == "cdrs_p20261130_060000"
    names = [partition_name("cdrs", t("2026-11-30") + timedelta(weeks=n)) for n in range(60)]
    assert names == sorted(names)
