"""The reveal risk policy: pure, parametrized, time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from routing.errors import ConfigurationError
from routing.risk import (
    RevealContext,
    RevealKind,
    RiskPolicy,
    RiskRule,
    assess,
    finish,
    load_policy,
    policy_from_mapping,
    quota_period,
    velocity_window,
)

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai


def ctx(level: str = "L2", velocity: int = 1, order_age: timedelta | None = timedelta(days=1)
        ) -> RevealContext:
    created = None if order_age is None else NOW - order_age
    return RevealContext(shop_id="s1", account_id="a1", shop_level=level,
                         velocity_count=velocity, order_created_at=created)


@pytest.mark.parametrize(
    ("policy", "context", "kind", "rule", "needs_quota"),
    [
        (RiskPolicy(), ctx(), RevealKind.PLAINTEXT, RiskRule.PLAINTEXT_ALLOWED, True),
        (RiskPolicy(), ctx(level="L0"), RevealKind.PRIVACY, RiskRule.SHOP_LEVEL, False),
        (RiskPolicy(privacy_only_levels=frozenset({"L0", "L1"})), ctx(level="L1"),
         RevealKind.PRIVACY, RiskRule.SHOP_LEVEL, False),
        (RiskPolicy(plaintext_enabled=False), ctx(), RevealKind.PRIVACY,
         RiskRule.PLAINTEXT_DISABLED, False),
        (RiskPolicy(velocity_limit=5), ctx(velocity=5), RevealKind.PLAINTEXT,
         RiskRule.PLAINTEXT_ALLOWED, True),
        (RiskPolicy(velocity_limit=5), ctx(velocity=6), RevealKind.REFUSED, RiskRule.VELOCITY,
         False),
        # velocity wins over every other rule, even for an L0 shop
        (RiskPolicy(velocity_limit=5), ctx(level="L0", velocity=6), RevealKind.REFUSED,
         RiskRule.VELOCITY, False),
        (RiskPolicy(plaintext_max_order_age_days=30), ctx(order_age=timedelta(days=31)),
         RevealKind.PRIVACY, RiskRule.ORDER_AGE, False),
        (RiskPolicy(plaintext_max_order_age_days=30), ctx(order_age=timedelta(days=29)),
         RevealKind.PLAINTEXT, RiskRule.PLAINTEXT_ALLOWED, True),
        (RiskPolicy(), ctx(order_age=None), RevealKind.PLAINTEXT, RiskRule.PLAINTEXT_ALLOWED, True),
        (RiskPolicy(require_order_age=True), ctx(order_age=None), RevealKind.PRIVACY,
         RiskRule.ORDER_AGE, False),
        (RiskPolicy(daily_plaintext_quota=0), ctx(), RevealKind.PRIVACY, RiskRule.DAILY_QUOTA,
         False),
        (RiskPolicy(daily_plaintext_quota=5, quota_by_level={"L3": 0}), ctx(level="L3"),
         RevealKind.PRIVACY, RiskRule.DAILY_QUOTA, False),
    ],
)
def test_assess(policy: RiskPolicy, context: RevealContext, kind: RevealKind, rule: RiskRule,
                needs_quota: bool) -> None:
    result = assess(policy, context, NOW)
    assert (result.kind, result.rule, result.needs_quota) == (kind, rule, needs_quota)


def test_quota_exhaustion_falls_back_to_privacy_and_never_refuses() -> None:
    policy = RiskPolicy(daily_plaintext_quota=3)
    used = 0
    kinds = []
    for _ in range(5):
        assessment = assess(policy, ctx(), NOW)
        taken = assessment.needs_quota and used < assessment.quota.limit
        used += int(taken)
        kinds.append(finish(assessment, taken))
    assert [d.kind for d in kinds] == ["plaintext"] * 3 + ["privacy"] * 2
    assert [d.rule for d in kinds][-1] is RiskRule.DAILY_QUOTA
    assert used == 3


def test_privacy_decisions_ignore_quota_flag() -> None:
    decision = finish(assess(RiskPolicy(), ctx(level="L0"), NOW), quota_taken=False)
    assert (decision.kind, decision.rule) == (RevealKind.PRIVACY, RiskRule.SHOP_LEVEL)


def test_quota_by_level_overrides_default() -> None:
    policy = RiskPolicy(daily_plaintext_quota=20, quota_by_level={"L1": 5})
    assert quota_period(policy, "L1", NOW).limit == 5
    assert quota_period(policy, "L4", NOW).limit == 20


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        # 23:59 and 00:01 local on either side of midnight in the configured zone
        ("Asia/Shanghai", datetime(2026, 11, 28, 15, 59, tzinfo=UTC),
         datetime(2026, 11, 28, 16, 1, tzinfo=UTC)),
        ("UTC", datetime(2026, 11, 28, 23, 59, tzinfo=UTC),
         datetime(2026, 11, 29, 0, 1, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 11, 29, 4, 59, tzinfo=UTC),
         datetime(2026, 11, 29, 5, 1, tzinfo=UTC)),
    ],
)
def test_quota_resets_at_local_midnight(zone: str, before: datetime, after: datetime) -> None:
    policy = RiskPolicy(timezone=zone)
    first, second = quota_period(policy, "L2", before), quota_period(policy, "L2", after)
    assert first.key != second.key
    assert second.day == first.day + timedelta(days=1)
    assert before < first.resets_at <= after
    assert first.resets_at.tzinfo is not None


def test_quota_day_is_local_not_utc() -> None:
    # 17:00 UTC on the 28th is already the 29th in Shanghai, still the 28th in UTC.
    moment = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
    assert quota_period(RiskPolicy(timezone="Asia/Shanghai"), "L1", moment).key == "2026-11-29"
    assert quota_period(RiskPolicy(timezone="UTC"), "L1", moment).key == "2026-11-28"


def test_velocity_window_is_fixed_and_ends_after_now() -> None:
    policy = RiskPolicy(velocity_window_seconds=600)
    number, end = velocity_window(policy, NOW)
    same, _ = velocity_window(policy, NOW + timedelta(seconds=599))
    nxt, _ = velocity_window(policy, end)
    assert same == number and nxt == number + 1
    assert NOW < end <= NOW + timedelta(seconds=600)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        assess(RiskPolicy(), ctx(), datetime(2026, 1, 1))


def test_load_policy_defaults_when_absent() -> None:
    assert load_policy(None) == RiskPolicy()


def test_load_policy_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "risk.toml"
    path.write_text(
        '[risk]\ntimezone = "UTC"\ndaily_plaintext_quota = 7\nprivacy_only_levels = ["L0", "L1"]\n'
        'velocity_limit = 3\nvelocity_window_seconds = 60\n[risk.quota_by_level]\nL3 = 50\n',
        encoding="utf-8",
    )
    policy = load_policy(path)
    assert policy.timezone == "UTC"
    assert policy.daily_plaintext_quota == 7
    assert policy.privacy_only_levels == frozenset({"L0", "L1"})
    assert policy.quota_for("L3") == 50
    assert policy.velocity_limit == 3


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"daily_plaintext_quota": -1}, ">= 0"),
        ({"velocity_window_seconds": 0}, ">= 1"),
        ({"velocity_limit": "ten"}, "integer"),
        ({"plaintext_enabled": 1}, "true or false"),
        ({"privacy_only_levels": "L0"}, "list"),
        ({"quota_by_level": {"L1": "x"}}, "integer"),
        ({"surprise": 1}, "unknown key"),
    ],
)
def test_bad_policy_is_one_clear_error(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        policy_from_mapping(table)


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_policy(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("risk = [", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_policy(broken)
