"""How ``python -m bench allocation`` turns its workers' reports into a rate, and the options
it refuses (pure: no database)."""

from __future__ import annotations

import pytest

from bench import allocation


def test_workers_rate_adds_each_workers_own_rate() -> None:
    """Workers side by side: 300 in 1.5 s and 200 in 1.0 s are 400/s together, whatever the
    wall time around them (start-up, teardown); a worker that measured nothing adds nothing."""
    assert allocation.workers_rate([{"done": 300, "seconds": 1.5},
                                    {"done": 200, "seconds": 1.0}]) == pytest.approx(400.0)
    assert allocation.workers_rate([{"done": 0, "seconds": 0.0}]) == 0.0


@pytest.mark.parametrize("argv", [["--seconds=0"], ["--seconds=-1"], ["--rounds=0"],
                                  ["--issues=0"]])
def test_options_that_measure_nothing_are_refused(argv: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        allocation.main(argv)
    assert exited.value.code == 2
    assert "must be positive" in capsys.readouterr().err
