"""Refresh the console's screenshots in docs/console/: runs the browser test (Debian's
Chromium, real PostgreSQL) with ``PRIVNUM_CONSOLE_SCREENSHOTS`` set, so the pictures come from
the same run that proves the pages work.

    .venv/bin/python scripts/console_screenshots.py [--out docs/console]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/api/test_console_browser.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console",
                        help="Directory the PNG files are written to.")
    args = parser.parse_args()
    env = {**os.environ, "PRIVNUM_CONSOLE_SCREENSHOTS": str(args.out.resolve())}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rs", TEST], cwd=ROOT, env=env, check=False)
    if done.returncode == 0:
        print(f"screenshots in {args.out}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
