"""``bench.handler_cpu``: the answers it reads, the wrong answers it counts, a toy run."""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path

import pytest

from agi import channel_vars as cv
from agi.answer import answer_commands
from agi.deadline import DeadlineSweeper
from bench import common, handler_cpu
from bench.agi_driver import build_envs
from bench.wiring import FLOOR_VARIABLES, FloorHandler


@pytest.mark.parametrize("variables", [
    FLOOR_VARIABLES,  # a bridge: the dial number's SET VARIABLE first, then the MSet
    {**FLOOR_VARIABLES, cv.ACTION: cv.ACTION_REJECT, cv.DIAL_NUMBER: ""},
    {cv.REASON: "x", cv.ACTION: cv.ACTION_REJECT},  # the action last in the MSet
])
def test_the_action_is_read_from_what_the_handler_sent(variables: dict[str, str]) -> None:
    peer = handler_cpu._Peer()
    for line in answer_commands(variables):
        peer.write(line.encode() + b"\n")
    assert peer.action() == variables[cv.ACTION]


def test_no_mset_is_no_answer() -> None:
    peer = handler_cpu._Peer()
    peer.write(b'SET VARIABLE "PRIVNUM_DIAL" "13900001234"\n')
    assert peer.action() is None


async def test_a_round_counts_every_answer_that_is_not_the_expected_action() -> None:
    envs = build_envs([("13800138000", "17000000001")] * 6, "t")
    sweeper = DeadlineSweeper()
    try:
        # the floor bridges every call
        assert await handler_cpu._round(FloorHandler(), envs, [cv.ACTION_REJECT] * 6, 3,
                                        sweeper) == 6
        assert await handler_cpu._round(FloorHandler(), envs, [cv.ACTION_BRIDGE] * 6, 3,
                                        sweeper) == 0
        assert await handler_cpu._round(FloorHandler(), envs, [None] * 6, 3, sweeper) == 0
    finally:
        await sweeper.close()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize(("log_level", "flush_seconds"),
                         [("WARNING", None), ("INFO", None), ("INFO", 0.2)])
async def test_handler_cpu_toy(pg_url: str, redis_url: str, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch, log_level: str,
                               flush_seconds: float | None) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    before_env = {k: v for k, v in os.environ.items() if k.startswith("PRIVNUM_")}
    before_gc = gc.get_threshold()
    root = logging.getLogger()
    before_logging = (list(root.handlers), root.level, logging.logThreads)
    result = await handler_cpu.run(calls=120, rounds=2, concurrency=4, pool_size=50,
                                   bindings=200, quiet=True, log_level=log_level,
                                   log_flush_seconds=flush_seconds)
    assert result["wrong_answers"] == {"floor": 0, "privnum": 0}
    for name in ("floor", "privnum"):
        rounds = result[name]["us_per_call_rounds"]
        assert len(rounds) == 2 and min(rounds) > 0
        assert result[name]["min_us"] == min(rounds)
    assert result["extra_us_min"] == pytest.approx(
        result["privnum"]["min_us"] - result["floor"]["min_us"], abs=0.11)
    # the process is left as it was: settings and the collector
    assert {k: v for k, v in os.environ.items() if k.startswith("PRIVNUM_")} == before_env
    assert gc.get_threshold() == before_gc
    assert (list(root.handlers), root.level, logging.logThreads) == before_logging
