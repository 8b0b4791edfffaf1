"""CLI start-up: ``privnum --help`` and single commands against ``python -c 'import typer, rich'``.

    python -m bench cli_startup [--quick] [--rounds=N]

Every figure is the median wall time of N fresh processes (default 15; ``--quick``: 5), rounds
interleaved so load on the (shared) machine hits all of them alike. The baseline is the bare
import of the two libraries every CLI run needs; the goals are ``--help`` <= 3x and any single
command <= 5x the baseline measured in the same run. Commands run against a throwaway SQLite
store in a temporary data directory (migrated before timing starts).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, print_table, ratio, write_result
from scripts.commands import COMMANDS

NAME = "cli_startup"
BASELINE = "python -c 'import typer, rich'"
# Commands that do real work (settings, database, output) on an empty, migrated store.
RUNS: tuple[tuple[str, ...], ...] = (
    ("db", "current"),
    ("shop", "show"),
    ("tokens", "list"),
    ("calls", "list", "--shop", "s1"),
    ("pool", "import", "{pool_csv}", "--quiet"),
    ("asterisk", "render", "--out", "{tmp}/asterisk"),
    ("config", "sample"),
)


def _privnum() -> list[str]:
    script = Path(sys.executable).with_name("privnum")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from scripts.cli import main; main()"]


def _time(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(argv[-4:])} exited {done.returncode}: "
                           f"{done.stderr.decode(errors='replace')[-300:]}")
    return elapsed


def run(rounds: int = 15, quiet: bool = False) -> dict[str, Any]:
    privnum = _privnum()
    with tempfile.TemporaryDirectory(prefix="privnum-cli-") as tmp:
        env = {**os.environ, "PRIVNUM_DATA_DIR": tmp, "PRIVNUM_CONFIG": "",
               "PRIVNUM_AMI__SECRET": "bench-secret-1", "NO_COLOR": "1", "COLUMNS": "120"}
        env.pop("PRIVNUM_CONFIG")
        env.pop("PRIVNUM_DATABASE__URL", None)
        pool_csv = Path(tmp) / "pool.csv"
        pool_csv.write_text("number,region\n+8617000000001,east\n", encoding="utf-8")
        for setup in (["db", "upgrade"], ["shop", "enable", "s1", "--main-account", "m1",
                                          "--phone", "13800000001", "--agreement", "v1"]):
            subprocess.run([*privnum, *setup], env=env, cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cases: dict[str, list[str]] = {BASELINE: [sys.executable, "-c", "import typer, rich"],
                                       "privnum --help": [*privnum, "--help"]}
        for entry in COMMANDS:
            cases[f"privnum {entry.name} --help"] = [*privnum, entry.name, "--help"]
        for args in RUNS:
            filled = [a.format(tmp=tmp, pool_csv=pool_csv) for a in args]
            cases["privnum " + " ".join(args).replace("{tmp}", "$TMP")
                  .replace("{pool_csv}", "pool.csv")] = [*privnum, *filled]
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, argv in cases.items():
                samples[name].append(_time(argv, env))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians[BASELINE]
    rows = [{"case": name, "median_ms": round(m * 1000, 1), "ratio": ratio(m, base)}
            for name, m in medians.items()]
    commands = [r for r in rows if r["case"] not in (BASELINE, "privnum --help")]
    worst = max(commands, key=lambda r: r["ratio"])
    result = {"rounds": rounds, "baseline_ms": round(base * 1000, 1), "cases": rows,
              "help_ratio": ratio(medians["privnum --help"], base),
              "worst_command": worst["case"], "worst_command_ratio": worst["ratio"]}
    if not quiet:
        print_table(f"CLI start-up, median of {rounds} runs (baseline: {BASELINE})",
                    ["case", "median ms", "x baseline"],
                    [[r["case"], r["median_ms"], r["ratio"]] for r in rows])
        print(f"privnum --help: {result['help_ratio']}x (goal <= 3x); slowest single command: "
              f"{worst['case']} {worst['ratio']}x (goal <= 5x)")
        write_result(NAME, result)
    return result


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench cli_startup")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    run(rounds=args.rounds or (5 if args.quick else 15))


if __name__ == "__main__":
    main(sys.argv[1:])
