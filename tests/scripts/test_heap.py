"""The serving process's garbage collector (scripts.heap): checked in a child process, so this
test process keeps CPython's defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from scripts import heap

ROOT = Path(__file__).resolve().parents[2]


def test_settle_freezes_the_start_up_heap_and_collects_the_young_less_often() -> None:
    probe = ("import gc, json; from scripts.heap import settle_for_serving; "
             "before = gc.get_threshold(); settle_for_serving(); "
             "print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count()]))")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env=env, cwd=ROOT).stdout
    before, after, frozen = json.loads(out)
    assert before[0] < heap.YOUNG
    assert after == [heap.YOUNG, heap.MIDDLE, heap.OLD]
    assert frozen > 1_000  # the modules' objects at least
