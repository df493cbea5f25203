"""The reader never changes the state folder and never holds up the daemon's WAL checkpoint."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from custom_components.openusage.core import reader as reader_module
from custom_components.openusage.core.models import Window
from custom_components.openusage.core.reader import StoreReader, read_store
from custom_components.openusage.core.snapshot_json import snapshot_to_json
from openusage_demo import EventWriter, generate_demo_store
from tests.constants import NOW, WARSAW


def fingerprint(folder: Path) -> dict[str, tuple[int, str]]:
    """Return every file with its mtime and content hash.

    The daemon's WAL index (-shm) is taken by its size and owner alone, since every reader of a live WAL writes its
    read mark there (reader.py says why).
    """
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        if not p.name.endswith("-shm")
        else (p.stat().st_size, str(p.stat().st_uid))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


async def test_refreshing_many_times_changes_nothing(tmp_path: Path) -> None:
    db = generate_demo_store(tmp_path, days=40, events=3000, now=NOW)
    # Leave a live WAL behind, as a running daemon does.
    writer = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sqlite3
            conn = sqlite3.connect({str(db)!r})
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("INSERT INTO daemon_meta VALUES ('probe', 'x')")
            conn.commit()
            import os; os._exit(0)  # exit without the checkpoint a clean close would run
        """)],
        check=True,
    )  # fmt: skip
    assert writer.returncode == 0
    assert (tmp_path / "telemetry.db-wal").stat().st_size > 0
    before = fingerprint(tmp_path)
    reader = StoreReader(db)
    try:
        for _ in range(20):
            snapshot = await reader.refresh(NOW, WARSAW)
    finally:
        await reader.close()
    assert snapshot.usage.totals[Window.D30].messages > 0
    assert snapshot.spool.hook_spool_files == 3
    assert fingerprint(tmp_path) == before


async def test_checkpoints_complete_while_refreshing(tmp_path: Path) -> None:
    db = generate_demo_store(tmp_path, days=30, events=20_000, now=NOW)
    script = textwrap.dedent(f"""
        import sqlite3, time
        from openusage_demo import EventWriter
        conn = sqlite3.connect({str(db)!r}, isolation_level=None, timeout=5)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA busy_timeout = 5000")
        writer = EventWriter(conn)
        busy = 0
        checkpoints = 0
        largest_wal = 0
        deadline = time.monotonic() + 8
        last_checkpoint = time.monotonic()
        while time.monotonic() < deadline:
            conn.execute("BEGIN IMMEDIATE")
            writer.add(source_system="codex", occurred_at="2026-08-17T11:59:00Z", provider_id="codex",
                       account_id="codex-cli", session_id="s", input_tokens=1)
            writer.flush()
            conn.execute("COMMIT")
            if time.monotonic() - last_checkpoint >= 1:
                row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                busy += row[0]
                checkpoints += 1
                last_checkpoint = time.monotonic()
                import os
                largest_wal = max(largest_wal, os.path.getsize({str(db)!r} + "-wal"))
            time.sleep(0.002)
        print(checkpoints, busy, largest_wal)
    """)
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    reader = StoreReader(db)
    refreshes = 0
    while daemon.returncode is None:
        snapshot = await reader.refresh(NOW, ZoneInfo("UTC"))
        assert snapshot.usage.totals[Window.ALL].messages > 0
        refreshes += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(daemon.wait()), 0.05)
    out, _ = await daemon.communicate()
    await reader.close()
    checkpoints, busy, largest_wal = (int(x) for x in out.split())
    assert daemon.returncode == 0
    assert refreshes >= 5
    assert checkpoints >= 3  # TRUNCATE waits for a refresh in progress, then completes
    assert busy == 0  # no checkpoint was held up by the reader
    assert largest_wal < 4 * 1024 * 1024


def _daemon_writes_and_checkpoints(db: Path, messages: int) -> sqlite3.Connection:
    """Start a writer as the daemon does (WAL), add message rows and checkpoint them into the store's file."""
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    writer = EventWriter(conn)
    for number in range(messages):
        writer.add(source_system="codex", occurred_at="2026-08-17T11:59:00Z", provider_id="codex",
                   account_id="codex-cli", session_id="s", message_id=f"written-during-the-read-{number}",
                   input_tokens=1000)  # fmt: skip
    writer.flush()
    assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    return conn


@pytest.mark.parametrize("daemon_stays", [False, True], ids=["daemon stops again", "daemon stays"])
async def test_a_read_the_daemon_wrote_under_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, daemon_stays: bool
) -> None:
    # With the daemon stopped there is no WAL and the store is read as `immutable`; here it starts in the middle of
    # a read, and its checkpoint changes the file's pages under the read.
    db = generate_demo_store(tmp_path, days=5, events=2_000, now=NOW)
    before = (await read_store(db, NOW, WARSAW)).usage.totals[Window.ALL].messages
    assert not db.with_name(db.name + "-wal").exists()
    read_quotas = reader_module.read_quotas
    reads: list[int] = []
    daemon: list[sqlite3.Connection] = []

    async def read_quotas_after_the_daemon_wrote(*args: object) -> object:
        reads.append(len(reads))
        if len(reads) == 1:
            daemon.append(await asyncio.to_thread(_daemon_writes_and_checkpoints, db, 50))
            if not daemon_stays:
                daemon.pop().close()  # its last connection: the WAL goes with it
        return await read_quotas(*args)

    monkeypatch.setattr(reader_module, "read_quotas", read_quotas_after_the_daemon_wrote)
    reader = StoreReader(db)
    try:
        snapshot = await reader.refresh(NOW, WARSAW)
    finally:
        await reader.close()
    monkeypatch.setattr(reader_module, "read_quotas", read_quotas)
    assert len(reads) == 2  # the read the file changed under was not taken: the store was read again
    fresh = await read_store(db, NOW, WARSAW)
    for conn in daemon:
        conn.close()
    assert snapshot_to_json(snapshot) == snapshot_to_json(fresh)
    assert snapshot.usage.totals[Window.ALL].messages == fresh.usage.totals[Window.ALL].messages
    assert snapshot.usage.totals[Window.ALL].messages == before + 50  # the daemon's rows, read again, are counted
