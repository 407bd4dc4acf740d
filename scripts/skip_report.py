"""Print, after the test run, what was skipped and why — a skip is never silent."""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ".pytest_skips")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line] if path.exists() else []
    if not lines:
        print("\nSkipped: nothing — the suite ran on SQLite and PostgreSQL, browser tests included.")
        return 0
    print("\nSkipped tests, and why:")
    for line in lines:
        count, reason = line.split("\t", 1)
        print(f"  {count:>4} × {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
