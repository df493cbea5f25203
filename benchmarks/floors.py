"""Floors: what the contract's own work costs, beside what issue 16's targets allow.

* A first read against the openusage-style baseline (refresh.py): the contract's deduplication alone (every
  partition's winner found and counted, no figure summed, nothing kept), the scoped rows' join alone, and their
  partition keys alone, each as a share of the baseline.
* The hourly check of the older rows: a block's fingerprint statement with each form SQLite can make of a row
  (the JSON array the fingerprints use, `quote()` of each column, plain concatenation) and with a Python aggregate,
  milliseconds a block, beside what any form costs at the least: the block's rows found, and each column loaded
  with no text made.
* An hour of polls at several paces of new rows a minute: how much of the hour is the new rows; and the hour without
  the hourly check, with a minute's new rows and with nothing new, which leaves the check's share and the polls' own.

    python benchmarks/floors.py --rows 1000000        # the recorded run
    python benchmarks/floors.py --rows 1000000 --parts block  # one of them: first, block, hour
    python benchmarks/floors.py --rows 2000 --repeat 1  # the smoke run scripts/test makes
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from refresh import NOW, PACE, baseline_refresh, hour_alone, store_with  # noqa: E402

from custom_components.openusage.core.mirror import (  # noqa: E402
    BLOCK_ROWS_SQL,
    CHECK_BLOCK_ROWS,
    FINGERPRINT_JSON_SQL,
    FINGERPRINT_SQL,
    FINGERPRINTED_COLUMNS,
)
from custom_components.openusage.core.reader import ReadOptions  # noqa: E402
from custom_components.openusage.core.usage import (  # noqa: E402
    DEDUPED_USAGE_SQL,
    PARTITION_KEY_SQL,
    SCOPED_USAGE_SQL,
)

# The fingerprint's statement, with each row read in each form SQLite can make of it.
_BLOCK_STATEMENTS = {
    "JSON array (the fingerprints')": FINGERPRINT_JSON_SQL,
    "quote() of each column": FINGERPRINT_SQL.format(
        row=" || char(31) || ".join(f"quote({c})" for c in FINGERPRINTED_COLUMNS)
    ),
    "plain concatenation (NULL and types lost)": FINGERPRINT_SQL.format(
        row=" || char(31) || ".join(FINGERPRINTED_COLUMNS)
    ),
}
# Beside them, a function of the reader's own (_RowHash) over each row's values, and what any form of a row must cost
# at the least: the block's rows found, and each of their columns loaded, no text made.
_BLOCK_FLOORS = {
    "a Python aggregate hashing each row": f"SELECT row_hash({', '.join(FINGERPRINTED_COLUMNS)}) {BLOCK_ROWS_SQL}",
    "floor: the rows found, no column read": f"SELECT count(*) {BLOCK_ROWS_SQL}",
    "floor: every column loaded, no text made": (
        f"SELECT {' + '.join(f'count({c})' for c in FINGERPRINTED_COLUMNS)} {BLOCK_ROWS_SQL}"
    ),
}
# A reader that never checks the older rows within the hour: what the polls cost without the check.
_NO_CHECK = ReadOptions(check_period=timedelta(days=36500))
_PARTITION_KEYS_SQL = f"SELECT count(*), max(k) FROM (SELECT {PARTITION_KEY_SQL} AS k FROM ({SCOPED_USAGE_SQL}))"
_FIRST_READ_PARTS = {
    "the contract's deduplication alone": f"SELECT count(*), total(cost_usd) FROM ({DEDUPED_USAGE_SQL})",
    "the scoped rows' join alone": f"SELECT count(*), total(cost_usd), max(src), max(chan) FROM ({SCOPED_USAGE_SQL})",
    "their partition keys alone": _PARTITION_KEYS_SQL,
}


def _query(path: Path, sql: str) -> Callable[[], None]:
    def run() -> None:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            conn.execute(sql).fetchall()
        finally:
            conn.close()

    return run


def first_read_floor(path: Path, repeat: int) -> None:
    """Print the baseline and each part of the contract's first read, as medians, in turn in each round."""
    runs: dict[str, Callable[[], None]] = {"baseline": lambda: baseline_refresh(path, NOW)}
    runs |= {name: _query(path, sql) for name, sql in _FIRST_READ_PARTS.items()}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
    baseline = statistics.median(seconds["baseline"])
    for name, times in seconds.items():
        median = statistics.median(times)
        print(f"  {name:40} {median:8.3f} s   {median / baseline:.3f} of the baseline")


class _RowHash:
    """An aggregate that hashes each row's values in Python: what a function of the reader's own would cost."""

    def __init__(self) -> None:
        self.digest = hashlib.sha1(usedforsecurity=False)

    def step(self, *values: object) -> None:
        self.digest.update(repr(values).encode())

    def finalize(self) -> int:
        return int.from_bytes(self.digest.digest()[:8], "big", signed=True)


def block_forms(path: Path, repeat: int) -> None:
    """Print the milliseconds a block's fingerprint statement takes with each form of a row, over about 40 blocks.

    Every row is after the cut (`''`), read together, as most blocks' rows are.
    """
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.create_aggregate("row_hash", len(FINGERPRINTED_COLUMNS), _RowHash)
    try:
        top = conn.execute("SELECT coalesce(max(rowid), 0) FROM usage_events").fetchone()[0]
        count = max(1, top // CHECK_BLOCK_ROWS)
        blocks = range(0, count, max(1, count // 40))
        statements = _BLOCK_STATEMENTS | _BLOCK_FLOORS
        spent = dict.fromkeys(statements, 0.0)
        for _ in range(repeat):
            for name, sql in statements.items():
                started = time.perf_counter()
                for block in blocks:
                    low = block * CHECK_BLOCK_ROWS
                    conn.execute(sql, {"lo": low, "hi": low + CHECK_BLOCK_ROWS - 1, "cut": ""}).fetchall()
                spent[name] += time.perf_counter() - started
    finally:
        conn.close()
    for name, seconds in spent.items():
        print(f"  {name:44} {seconds / repeat / len(blocks) * 1000:6.2f} ms a block ({len(blocks)} blocks)")


def _hours(rows: int, paces: str) -> None:
    """Print the CPU seconds of an hour of polls at each pace, and without the hourly check."""
    for pace in (int(p) for p in paces.split(",")):
        print(f"  {pace:4} a minute: {hour_alone(rows, 90, pace):.2f} s")
    print("  without the hourly check of the older rows (none changed in place):")
    print(f"    {PACE} a minute: {hour_alone(rows, 90, options=_NO_CHECK, old_row=False):.2f} s")
    print(f"    nothing new:  {hour_alone(rows, 90, None, options=_NO_CHECK):.2f} s")


def main() -> int:
    """Run the floors from the command line and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="store size")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (median)")
    parser.add_argument("--paces", default="100,56,13", help="new rows a minute in the hours of polls")
    parser.add_argument("--parts", default="first,block,hour", help="which of the three parts to run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    path = store_with(args.rows)
    if "first" in parts:
        print(f"\n== a first read, {args.rows:,} rows")
        first_read_floor(path, args.repeat)
    if "block" in parts:
        print(f"\n== a block's fingerprint statement ({CHECK_BLOCK_ROWS:,} rowids), by the form of a row")
        block_forms(path, args.repeat)
    if "hour" in parts:
        print("\n== an hour of polls, by new rows a minute (CPU seconds, a fresh reader each)")
        _hours(args.rows, args.paces)
    return 0


if __name__ == "__main__":
    sys.exit(main())
