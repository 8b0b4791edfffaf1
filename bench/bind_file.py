"""Bulk binding from the command line: ``privnum bind --file`` against one ``privnum bind``
per order, on PostgreSQL (no Redis), same run.

    python -m bench bind_file [--quick] [--orders N]

Baseline: ``--singles`` separate ``privnum bind`` processes one after the other (what an
operator's shell loop does). Figure: one ``privnum bind --file`` of N orders (start-up
included). Both in orders per second; the ratio is file / singles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, print_table, ratio, scratch_pg, write_result

NAME = "bind_file"
MAIN = "+8613800138000"


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-c", "from scripts.cli import main; main()", *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          check=False)
    if done.returncode not in (0, 3):
        raise SystemExit(f"privnum {' '.join(args[:2])} failed: {done.stderr.strip()[-400:]}")
    return done


async def run(orders: int, singles: int) -> dict[str, Any]:
    async with scratch_pg("bindfile") as url:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVNUM_")}
            env.update(PRIVNUM_DATA_DIR=str(work), PRIVNUM_DATABASE__URL=url,
                       PRIVNUM_REDIS__URL="", PRIVNUM_LOG_LEVEL="WARNING")
            pool = work / "pool.csv"
            pool.write_text("number,region\n" + "".join(
                f"+86170{i:08d},bj\n" for i in range(orders + singles + 10)), encoding="utf-8")
            for setup in (("db", "upgrade"), ("keys", "generate"),
                          ("shop", "enable", "s1", "--main-account", "boss", "--phone", MAIN,
                           "--agreement", "v1"), ("pool", "import", str(pool), "-q")):
                _cli(env, *setup)
            began = time.perf_counter()
            for i in range(singles):
                _cli(env, "bind", "--shop", "s1", "--order", f"single-{i}", "--caller", MAIN,
                     "--buyer", f"+86139{i:08d}")
            single_s = time.perf_counter() - began
            csv_file = work / "orders.csv"
            csv_file.write_text("order,caller,buyer\n" + "".join(
                f"bulk-{i},{MAIN},+86137{i:08d}\n" for i in range(orders)), encoding="utf-8")
            began = time.perf_counter()
            done = _cli(env, "bind", "--file", str(csv_file), "--shop", "s1", "--json")
            file_s = time.perf_counter() - began
            report = json.loads(done.stdout)
            outcomes: dict[str, int] = {}
            for row in report["rows"]:
                outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + 1
            messages = sorted({r["message"] for r in report["rows"] if not r["ok"]})[:3]
    singles_rate = singles / single_s
    file_rate = orders / file_s
    return {"orders": orders, "singles": singles,
            "singles_seconds": round(single_s, 2), "singles_per_s": round(singles_rate, 2),
            "file_seconds": round(file_s, 2), "file_per_s": round(file_rate, 1),
            "issued": report["issued"], "refused": report["refused"], "outcomes": outcomes,
            "refusals": messages,
            "ratio_file_to_singles": ratio(file_rate, singles_rate)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench bind_file")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--orders", type=int)
    args = parser.parse_args(argv)
    orders = args.orders or (500 if args.quick else 5_000)
    results = asyncio.run(run(orders, 5 if args.quick else 10))
    print_table("privnum bind: one process per order vs --file (PostgreSQL, no Redis)",
                ["how", "orders", "seconds", "orders/s", "x baseline"],
                [["baseline: privnum bind per order", results["singles"],
                  results["singles_seconds"], results["singles_per_s"], 1],
                 ["privnum bind --file", results["orders"], results["file_seconds"],
                  results["file_per_s"], results["ratio_file_to_singles"]]])
    if results["refused"]:
        print(f"refused rows: {results['outcomes']} {results['refusals']}")
    write_result(NAME, results)
    return results


if __name__ == "__main__":
    main()
