"""Quota benchmark: what reading the quotas costs a refresh when openusage polls every 30 s with large payloads.

Each refresh reads every account's last hour of limit snapshots for the rate. A heavy user's store has been seen
with payloads of tens of KB each (541 snapshots, 26.6 MB); the demo store's are a few hundred bytes. Side by side
in one process: a refresh without the memo of earlier refreshes, which parses every snapshot it reads, and one with
it, which parses only the snapshots new since the last refresh.

    python benchmarks/quotas.py                    # six accounts, 30 KB payloads
    python benchmarks/quotas.py --payload-kb 2     # small payloads
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from custom_components.openusage.core.db import close, connect, run  # noqa: E402
from custom_components.openusage.core.quotas import SnapshotMemo, read_quotas  # noqa: E402
from custom_components.openusage.core.schema import LATEST_RELEASE, create_indexes, create_schema  # noqa: E402
from openusage_demo import EventWriter  # noqa: E402

START = datetime(2026, 11, 23, 10, tzinfo=UTC)
ACCOUNTS = (("claude_code", "claude-code"), ("codex", "codex-cli"), ("copilot", "copilot"),
            ("cursor", "cursor-ide"), ("gemini_cli", "gemini-cli"), ("openrouter", "openrouter"))  # fmt: skip


def _payload(provider: str, percent: float, size: int) -> str:
    metrics = {"usage_five_hour": {"used": percent, "limit": 100, "unit": "%", "window": "5h"}}
    # The rest of a real snapshot: a provider's raw response and its diagnostics.
    filler = {f"field_{i}": "x" * 90 for i in range(max(0, size // 100))}
    snapshot = {"provider_id": provider, "status": "OK", "metrics": metrics, "attributes": filler,
                "resets": {"usage_five_hour": "2026-11-23T15:00:00Z"}}  # fmt: skip
    return json.dumps({"snapshot": snapshot}, separators=(",", ":"))


def _write_polls(conn: sqlite3.Connection, polls: range, payload_kb: int) -> None:
    """Write one snapshot of every account for each poll in `polls` (30 s apart), in one transaction."""
    conn.execute("BEGIN")
    writer = EventWriter(conn)
    for poll in polls:
        at = START + timedelta(seconds=30 * poll)
        for provider, account in ACCOUNTS:
            writer.add(
                source_system="provider_poller",
                source_channel="api",
                source_schema_version="provider_snapshot_v1",
                payload=_payload(provider, poll / 10, payload_kb * 1024),
                event_type="limit_snapshot",
                occurred_at=f"{at:%Y-%m-%dT%H:%M:%SZ}",
                provider_id=provider,
                account_id=account,
                agent_name="provider_poller",
                turn_id=f"snapshot:{provider}:{at}",
            )
    writer.flush()
    conn.execute("COMMIT")


def make_store(path: Path, payload_kb: int, polls: int) -> None:
    """Write `polls` snapshots 30 s apart for each account, with payloads of about `payload_kb` KB."""
    conn = sqlite3.connect(path, isolation_level=None)
    create_schema(conn, LATEST_RELEASE)
    create_indexes(conn, LATEST_RELEASE)
    _write_polls(conn, range(polls), payload_kb)
    conn.close()


def add_poll(path: Path, poll: int, payload_kb: int) -> None:
    """One more poll of every account."""
    conn = sqlite3.connect(path, isolation_level=None)
    _write_polls(conn, range(poll, poll + 1), payload_kb)
    conn.close()


async def measure(path: Path, payload_kb: int, polls: int, refreshes: int) -> tuple[list[float], list[float]]:
    """Return the CPU seconds of each refresh's quota read: parsing everything, and parsing what is new."""
    db = await connect(f"file:{path}?mode=ro", 5.0)
    memo = SnapshotMemo()
    every, new_only = [], []
    try:
        await read_quotas(db, START, memo)
        for poll in range(polls, polls + refreshes):
            await asyncio.to_thread(add_poll, path, poll, payload_kb)
            await run(db, "SELECT 1")  # a fresh read transaction sees the new rows
            for times, kept in ((every, None), (new_only, memo)):
                started = time.process_time()
                await read_quotas(db, START, kept)
                times.append(time.process_time() - started)
    finally:
        await close(db)
    return every, new_only


def main() -> int:
    """Run the benchmark from the command line and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payload-kb", type=int, default=30, help="size of each snapshot's payload")
    parser.add_argument("--refreshes", type=int, default=20, help="refreshes measured, one a poll")
    args = parser.parse_args()
    polls = 150  # an hour and a quarter
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "telemetry.db"
        make_store(path, args.payload_kb, polls)
        every, new_only = asyncio.run(measure(path, args.payload_kb, polls, args.refreshes))
    slow, fast = statistics.median(every), statistics.median(new_only)
    print(f"{len(ACCOUNTS)} accounts, {args.payload_kb} KB payloads, a snapshot every 30 s")
    print(f"  quotas of a refresh, every snapshot parsed:  {slow * 1000:.1f} ms CPU")
    print(f"  quotas of a refresh, new snapshots parsed:   {fast * 1000:.1f} ms CPU  ({fast / slow:.2f} of it)")
    print(f"  at one refresh a minute: {slow * 60:.2f} s against {fast * 60:.2f} s of CPU an hour")
    return 0


if __name__ == "__main__":
    sys.exit(main())
